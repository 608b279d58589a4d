/*
 * A stand-in for libusb-1.0, loaded only into the process of Debian's unmodified
 * rkdeveloptool (1.32+git20210408.46bb4c0) so that it flashes the twin's boards.
 *
 * Why: the twin's boards are QEMU guests with no USB device; the real tool must
 * still be the one that lists, loads and writes them. This library is built into a
 * private folder as libusb-1.0.so.0 (soname libusb-1.0.so.0) and put first on
 * LD_LIBRARY_PATH for the tool's process only. It is never installed system-wide.
 *
 * API: exactly the 17 functions the binary imports (objdump -T /usr/bin/rkdeveloptool),
 * with libusb-1.0's signatures, struct layouts and error codes (libusb.h):
 *   libusb_init libusb_exit libusb_get_device_list libusb_free_device_list
 *   libusb_ref_device libusb_unref_device libusb_get_device_descriptor
 *   libusb_get_active_config_descriptor libusb_free_config_descriptor
 *   libusb_get_bus_number libusb_get_port_number libusb_open libusb_close
 *   libusb_claim_interface libusb_reset_device libusb_control_transfer
 *   libusb_bulk_transfer
 *
 * Devices: TWIN_ROCKUSB = comma-separated host:port, one TCP endpoint per board
 * (hil/twin/rockusb.py). Each libusb_get_device_list asks every endpoint what it
 * presents (QUERY); an endpoint that is absent, unreachable or silent is no device,
 * so a board that leaves loader mode disappears as a real one does. A device shows
 * the descriptor the endpoint reports (VID, PID, bcdUSB, bcdDevice), its bus number
 * and port path, and one configuration with one vendor interface (class 0xff,
 * subclass 6, protocol 5) holding bulk endpoints 0x81 IN and 0x01 OUT, which is what
 * rkdeveloptool's CRKUsbComm::InitializeUsb looks for (RKComm.cpp).
 *
 * libusb_open opens one TCP connection (OPEN); every transfer on that handle is one
 * request/reply on it. A closed or reset connection, or a NO_DEVICE reply, gives
 * LIBUSB_ERROR_NO_DEVICE, as libusb reports an unplugged device; a socket error is
 * LIBUSB_ERROR_IO. Every socket operation has a deadline: connect and QUERY 2 s; a
 * transfer waits for its reply the tool's timeout + 5 s, or, when the tool asks for no
 * timeout (rkdeveloptool's CMD_TIMEOUT is 0), TWIN_ROCKUSB_TIMEOUT_MS (default 60000),
 * then fails with LIBUSB_ERROR_TIMEOUT and drops the connection. Nothing here waits
 * forever. TWIN_ROCKUSB_DEBUG=1 prints each step on stderr.
 *
 * Framed protocol (all integers little-endian), one reply per request:
 *
 *   request = u32 body_len | u8 op | u8 ep_or_type | u8 request | u8 0
 *             | u16 value | u16 index | u32 length | u32 timeout_ms | data
 *     op 'Q' QUERY: what the endpoint presents (no handle needed)
 *     op 'O' OPEN: open the device (libusb_open)
 *     op 'C' CONTROL: ep_or_type = bmRequestType, request = bRequest, value = wValue,
 *                     index = wIndex, length = wLength; data = wLength bytes when OUT
 *     op 'B' BULK: ep_or_type = endpoint address; length = bytes to send (OUT, data
 *                  follows) or the most to receive (IN)
 *     op 'R' RESET: libusb_reset_device
 *     body_len = 16 + len(data); timeout_ms is the tool's (0 = none)
 *
 *   reply = u32 body_len | i32 result | u32 actual | data
 *     result: 0 or a libusb error code (LIBUSB_ERROR_PIPE for a stall, _TIMEOUT when
 *             the device has nothing to send, _NO_DEVICE when it is gone)
 *     actual: bytes transferred; data = the bytes received (IN) or the QUERY record
 *     QUERY record: u8 present | u8 mode (0 none, 1 Maskrom, 2 Loader) | u16 idVendor
 *                   | u16 idProduct | u16 bcdUSB | u16 bcdDevice | u8 bus | u8 nports
 *                   | u8 ports[nports]
 *     body_len = 8 + len(data); bodies over 16 MiB are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

/* libusb_error (libusb.h) */
enum libusb_error {
	LIBUSB_SUCCESS = 0,
	LIBUSB_ERROR_IO = -1,
	LIBUSB_ERROR_INVALID_PARAM = -2,
	LIBUSB_ERROR_ACCESS = -3,
	LIBUSB_ERROR_NO_DEVICE = -4,
	LIBUSB_ERROR_NOT_FOUND = -5,
	LIBUSB_ERROR_BUSY = -6,
	LIBUSB_ERROR_TIMEOUT = -7,
	LIBUSB_ERROR_OVERFLOW = -8,
	LIBUSB_ERROR_PIPE = -9,
	LIBUSB_ERROR_INTERRUPTED = -10,
	LIBUSB_ERROR_NO_MEM = -11,
	LIBUSB_ERROR_NOT_SUPPORTED = -12,
	LIBUSB_ERROR_OTHER = -99
};

/* Public descriptor structs, field for field as in libusb.h. */
struct libusb_device_descriptor {
	uint8_t bLength;
	uint8_t bDescriptorType;
	uint16_t bcdUSB;
	uint8_t bDeviceClass;
	uint8_t bDeviceSubClass;
	uint8_t bDeviceProtocol;
	uint8_t bMaxPacketSize0;
	uint16_t idVendor;
	uint16_t idProduct;
	uint16_t bcdDevice;
	uint8_t iManufacturer;
	uint8_t iProduct;
	uint8_t iSerialNumber;
	uint8_t bNumConfigurations;
};

struct libusb_endpoint_descriptor {
	uint8_t bLength;
	uint8_t bDescriptorType;
	uint8_t bEndpointAddress;
	uint8_t bmAttributes;
	uint16_t wMaxPacketSize;
	uint8_t bInterval;
	uint8_t bRefresh;
	uint8_t bSynchAddress;
	const unsigned char *extra;
	int extra_length;
};

struct libusb_interface_descriptor {
	uint8_t bLength;
	uint8_t bDescriptorType;
	uint8_t bInterfaceNumber;
	uint8_t bAlternateSetting;
	uint8_t bNumEndpoints;
	uint8_t bInterfaceClass;
	uint8_t bInterfaceSubClass;
	uint8_t bInterfaceProtocol;
	uint8_t iInterface;
	const struct libusb_endpoint_descriptor *endpoint;
	const unsigned char *extra;
	int extra_length;
};

struct libusb_interface {
	const struct libusb_interface_descriptor *altsetting;
	int num_altsetting;
};

struct libusb_config_descriptor {
	uint8_t bLength;
	uint8_t bDescriptorType;
	uint16_t wTotalLength;
	uint8_t bNumInterfaces;
	uint8_t bConfigurationValue;
	uint8_t iConfiguration;
	uint8_t bmAttributes;
	uint8_t MaxPower;
	const struct libusb_interface *interface;
	const unsigned char *extra;
	int extra_length;
};

typedef struct libusb_context libusb_context;

/* Opaque to the caller; ours. */
typedef struct libusb_device {
	int refcnt;
	char host[256];
	char port[16];
	struct libusb_device_descriptor desc;
	uint8_t bus;
	uint8_t nports;
	uint8_t ports[7];
} libusb_device;

typedef struct libusb_device_handle {
	libusb_device *dev;
	int fd; /* -1 once the connection is gone */
} libusb_device_handle;

struct libusb_context {
	int dummy;
};

#define MAX_ENDPOINTS 32
#define MAX_BODY (16u << 20)
#define CONNECT_MS 2000
#define QUERY_MS 2000
#define REPLY_SLACK_MS 5000
#define DEFAULT_NO_TIMEOUT_MS 60000

static struct libusb_context default_ctx;

static int debug_on(void)
{
	const char *v = getenv("TWIN_ROCKUSB_DEBUG");
	return v && *v && strcmp(v, "0") != 0;
}

static void dbg(const char *fmt, ...)
{
	va_list ap;
	if (!debug_on())
		return;
	va_start(ap, fmt);
	fputs("usbstub: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------ time and sockets */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes: 1 ready, 0 timeout, <0 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
		int r;
		if (left <= 0)
			return 0;
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		return 1;
	}
}

static int tcp_connect(const char *host, const char *port, long long deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int err = 0, one = 1;
		socklen_t len = sizeof(err);
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Errors of the stream: a closed or reset peer is an unplugged device. */
static int stream_error(int err)
{
	if (err == 0 || err == ECONNRESET || err == EPIPE || err == ENOTCONN || err == ECONNABORTED)
		return LIBUSB_ERROR_NO_DEVICE;
	return LIBUSB_ERROR_IO;
}

static int send_all(int fd, const unsigned char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r == 0)
				return LIBUSB_ERROR_TIMEOUT;
			if (r < 0)
				return LIBUSB_ERROR_IO;
			continue;
		}
		return stream_error(n < 0 ? errno : 0);
	}
	return 0;
}

static int recv_all(int fd, unsigned char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int r = wait_fd(fd, POLLIN, deadline);
			if (r == 0)
				return LIBUSB_ERROR_TIMEOUT;
			if (r < 0)
				return LIBUSB_ERROR_IO;
			continue;
		}
		return stream_error(n < 0 ? errno : 0);
	}
	return 0;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/*
 * One request/reply. out/out_len: data sent after the header; in/in_cap: room for
 * the reply's data. Returns 0 when the exchange went through (the reply's result in
 * *result, its actual count in *actual), else the stream's error: the stream is then
 * out of step and the connection must be dropped.
 */
static int exchange(int fd, uint8_t op, uint8_t ep_or_type, uint8_t request, uint16_t value,
		    uint16_t index, uint32_t length, unsigned int timeout_ms,
		    const unsigned char *out, uint32_t out_len,
		    unsigned char *in, uint32_t in_cap, int *result, uint32_t *actual, long long deadline)
{
	unsigned char hdr[20], rep[12];
	uint32_t body, got;
	int r;

	*actual = 0;
	*result = LIBUSB_ERROR_IO;
	put32(hdr, 16 + out_len);
	hdr[4] = op;
	hdr[5] = ep_or_type;
	hdr[6] = request;
	hdr[7] = 0;
	put16(hdr + 8, value);
	put16(hdr + 10, index);
	put32(hdr + 12, length);
	put32(hdr + 16, timeout_ms);
	if ((r = send_all(fd, hdr, sizeof(hdr), deadline)) != 0)
		return r;
	if (out_len && (r = send_all(fd, out, out_len, deadline)) != 0)
		return r;
	if ((r = recv_all(fd, rep, sizeof(rep), deadline)) != 0)
		return r;
	body = get32(rep);
	got = get32(rep + 8);
	if (body < 8 || body > MAX_BODY || body - 8 > in_cap)
		return LIBUSB_ERROR_IO;
	if (got > (body - 8 > out_len ? body - 8 : out_len))
		return LIBUSB_ERROR_IO;
	if (body > 8 && (r = recv_all(fd, in, body - 8, deadline)) != 0)
		return r;
	*result = (int32_t)get32(rep + 4);
	*actual = got;
	return 0;
}

/* ------------------------------------------------------------------ devices */

static long long transfer_deadline(unsigned int timeout)
{
	long long wait = DEFAULT_NO_TIMEOUT_MS;
	const char *cap = getenv("TWIN_ROCKUSB_TIMEOUT_MS");
	if (cap && *cap) {
		long long v = strtoll(cap, NULL, 10);
		if (v > 0)
			wait = v;
	}
	if (timeout > 0)
		wait = (long long)timeout + REPLY_SLACK_MS;
	return now_ms() + wait;
}

/* Ask one endpoint what it presents; a new device (refcnt 1) or NULL. */
static libusb_device *query_endpoint(const char *host, const char *port)
{
	long long deadline = now_ms() + CONNECT_MS;
	unsigned char rec[64];
	uint32_t got = 0;
	libusb_device *dev;
	int fd, r, result;

	fd = tcp_connect(host, port, deadline);
	if (fd < 0) {
		dbg("%s:%s: no answer", host, port);
		return NULL;
	}
	r = exchange(fd, 'Q', 0, 0, 0, 0, 0, 0, NULL, 0, rec, sizeof(rec), &result, &got,
		     now_ms() + QUERY_MS);
	close(fd);
	if (r == 0)
		r = result;
	if (r != 0 || got < 12 || !rec[0] || rec[11] > 7 || got < 12u + rec[11]) {
		dbg("%s:%s: not present (result %d)", host, port, r);
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->refcnt = 1;
	snprintf(dev->host, sizeof(dev->host), "%s", host);
	snprintf(dev->port, sizeof(dev->port), "%s", port);
	dev->desc.bLength = 18;
	dev->desc.bDescriptorType = 0x01; /* LIBUSB_DT_DEVICE */
	dev->desc.idVendor = get16(rec + 2);
	dev->desc.idProduct = get16(rec + 4);
	dev->desc.bcdUSB = get16(rec + 6);
	dev->desc.bcdDevice = get16(rec + 8);
	dev->desc.bMaxPacketSize0 = 64;
	dev->desc.bNumConfigurations = 1;
	dev->bus = rec[10];
	dev->nports = rec[11];
	memcpy(dev->ports, rec + 12, dev->nports);
	dbg("%s:%s: %04x:%04x bcdUSB %04x bus %u ports %u", host, port, dev->desc.idVendor,
	    dev->desc.idProduct, dev->desc.bcdUSB, dev->bus, dev->nports);
	return dev;
}

API int libusb_init(libusb_context **ctx)
{
	if (ctx)
		*ctx = &default_ctx;
	return LIBUSB_SUCCESS;
}

API void libusb_exit(libusb_context *ctx)
{
	(void)ctx;
}

API ssize_t libusb_get_device_list(libusb_context *ctx, libusb_device ***list)
{
	const char *spec = getenv("TWIN_ROCKUSB");
	libusb_device **devs;
	ssize_t n = 0;
	char *copy, *item, *save = NULL;

	(void)ctx;
	if (!list)
		return LIBUSB_ERROR_INVALID_PARAM;
	devs = calloc(MAX_ENDPOINTS + 1, sizeof(*devs));
	if (!devs)
		return LIBUSB_ERROR_NO_MEM;
	copy = strdup(spec ? spec : "");
	if (!copy) {
		free(devs);
		return LIBUSB_ERROR_NO_MEM;
	}
	for (item = strtok_r(copy, ",", &save); item && n < MAX_ENDPOINTS; item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		char *host = item;
		libusb_device *dev;
		while (*host == ' ')
			host++;
		if (!colon || colon == host)
			continue;
		*colon = '\0';
		if (*host == '[' && colon[-1] == ']') { /* [::1]:port */
			host++;
			colon[-1] = '\0';
		}
		dev = query_endpoint(host, colon + 1);
		if (dev)
			devs[n++] = dev;
	}
	free(copy);
	*list = devs;
	return n;
}

API libusb_device *libusb_ref_device(libusb_device *dev)
{
	if (dev)
		dev->refcnt++;
	return dev;
}

API void libusb_unref_device(libusb_device *dev)
{
	if (dev && --dev->refcnt == 0)
		free(dev);
}

API void libusb_free_device_list(libusb_device **list, int unref_devices)
{
	libusb_device **p;
	if (!list)
		return;
	if (unref_devices)
		for (p = list; *p; p++)
			libusb_unref_device(*p);
	free(list);
}

API int libusb_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *desc)
{
	if (!dev || !desc)
		return LIBUSB_ERROR_INVALID_PARAM;
	*desc = dev->desc;
	return LIBUSB_SUCCESS;
}

API uint8_t libusb_get_bus_number(libusb_device *dev)
{
	return dev ? dev->bus : 0;
}

/* The port this device hangs off on its parent hub: the last element of the port path. */
API uint8_t libusb_get_port_number(libusb_device *dev)
{
	return (dev && dev->nports) ? dev->ports[dev->nports - 1] : 0;
}

/* One allocation: config, interface, altsetting, two bulk endpoints (512-byte packets). */
struct stub_config {
	struct libusb_config_descriptor config;
	struct libusb_interface interface;
	struct libusb_interface_descriptor altsetting;
	struct libusb_endpoint_descriptor endpoints[2];
};

API int libusb_get_active_config_descriptor(libusb_device *dev, struct libusb_config_descriptor **config)
{
	struct stub_config *c;
	if (!dev || !config)
		return LIBUSB_ERROR_INVALID_PARAM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return LIBUSB_ERROR_NO_MEM;
	c->endpoints[0] = (struct libusb_endpoint_descriptor){
		.bLength = 7, .bDescriptorType = 0x05, .bEndpointAddress = 0x81,
		.bmAttributes = 0x02, .wMaxPacketSize = 512,
	};
	c->endpoints[1] = (struct libusb_endpoint_descriptor){
		.bLength = 7, .bDescriptorType = 0x05, .bEndpointAddress = 0x01,
		.bmAttributes = 0x02, .wMaxPacketSize = 512,
	};
	c->altsetting = (struct libusb_interface_descriptor){
		.bLength = 9, .bDescriptorType = 0x04, .bInterfaceNumber = 0,
		.bAlternateSetting = 0, .bNumEndpoints = 2, .bInterfaceClass = 0xff,
		.bInterfaceSubClass = 0x06, .bInterfaceProtocol = 0x05,
		.endpoint = c->endpoints,
	};
	c->interface.altsetting = &c->altsetting;
	c->interface.num_altsetting = 1;
	c->config = (struct libusb_config_descriptor){
		.bLength = 9, .bDescriptorType = 0x02, .wTotalLength = 9 + 9 + 7 + 7,
		.bNumInterfaces = 1, .bConfigurationValue = 1, .bmAttributes = 0x80,
		.MaxPower = 250, .interface = &c->interface,
	};
	*config = &c->config;
	return LIBUSB_SUCCESS;
}

API void libusb_free_config_descriptor(struct libusb_config_descriptor *config)
{
	free(config); /* config is the first member of its stub_config */
}

/* ------------------------------------------------------------------ handles */

static void drop(libusb_device_handle *h)
{
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
}

API int libusb_open(libusb_device *dev, libusb_device_handle **dev_handle)
{
	libusb_device_handle *h;
	uint32_t got = 0;
	int fd, r, result;

	if (!dev || !dev_handle)
		return LIBUSB_ERROR_INVALID_PARAM;
	fd = tcp_connect(dev->host, dev->port, now_ms() + CONNECT_MS);
	if (fd < 0)
		return LIBUSB_ERROR_NO_DEVICE;
	r = exchange(fd, 'O', 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0, &result, &got, now_ms() + QUERY_MS);
	if (r == 0)
		r = result;
	if (r != 0) {
		dbg("open %s:%s: %d", dev->host, dev->port, r);
		close(fd);
		return r == LIBUSB_ERROR_TIMEOUT ? LIBUSB_ERROR_IO : r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return LIBUSB_ERROR_NO_MEM;
	}
	h->dev = libusb_ref_device(dev);
	h->fd = fd;
	*dev_handle = h;
	return LIBUSB_SUCCESS;
}

API void libusb_close(libusb_device_handle *dev_handle)
{
	if (!dev_handle)
		return;
	drop(dev_handle);
	libusb_unref_device(dev_handle->dev);
	free(dev_handle);
}

API int libusb_claim_interface(libusb_device_handle *dev_handle, int interface_number)
{
	if (!dev_handle)
		return LIBUSB_ERROR_INVALID_PARAM;
	if (interface_number != 0)
		return LIBUSB_ERROR_NOT_FOUND;
	return dev_handle->fd >= 0 ? LIBUSB_SUCCESS : LIBUSB_ERROR_NO_DEVICE;
}

/*
 * A transfer on a handle. A stream that broke or timed out is dropped (the handle is
 * then NO_DEVICE, as for an unplugged device); the device's own answers (a stall, a
 * timeout with nothing to send) leave the connection in step and usable.
 */
static int handle_exchange(libusb_device_handle *h, uint8_t op, uint8_t ep_or_type, uint8_t request,
			   uint16_t value, uint16_t index, uint32_t length, unsigned int timeout,
			   const unsigned char *out, uint32_t out_len, unsigned char *in,
			   uint32_t in_cap, uint32_t *actual)
{
	int r, result = LIBUSB_ERROR_NO_DEVICE;
	*actual = 0;
	if (h->fd >= 0) {
		r = exchange(h->fd, op, ep_or_type, request, value, index, length, timeout, out, out_len,
			     in, in_cap, &result, actual, transfer_deadline(timeout));
		if (r != 0) {
			drop(h);
			result = r;
		} else if (result == LIBUSB_ERROR_NO_DEVICE) {
			drop(h);
		}
	}
	dbg("op %c ep/type 0x%02x len %u -> %d (%u)", op, ep_or_type, length, result, *actual);
	return result;
}

API int libusb_reset_device(libusb_device_handle *dev_handle)
{
	uint32_t got;
	if (!dev_handle)
		return LIBUSB_ERROR_INVALID_PARAM;
	return handle_exchange(dev_handle, 'R', 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0, &got);
}

API int libusb_control_transfer(libusb_device_handle *dev_handle, uint8_t request_type, uint8_t bRequest,
				uint16_t wValue, uint16_t wIndex, unsigned char *data, uint16_t wLength,
				unsigned int timeout)
{
	int in = (request_type & 0x80) != 0;
	uint32_t got = 0;
	int r;

	if (!dev_handle || (wLength && !data))
		return LIBUSB_ERROR_INVALID_PARAM;
	r = handle_exchange(dev_handle, 'C', request_type, bRequest, wValue, wIndex, wLength, timeout,
			    in ? NULL : data, in ? 0 : wLength, in ? data : NULL, in ? wLength : 0, &got);
	return r < 0 ? r : (int)got;
}

API int libusb_bulk_transfer(libusb_device_handle *dev_handle, unsigned char endpoint, unsigned char *data,
			     int length, int *actual_length, unsigned int timeout)
{
	int in = (endpoint & 0x80) != 0;
	uint32_t got = 0;
	int r;

	if (actual_length)
		*actual_length = 0;
	if (!dev_handle || length < 0 || (length && !data))
		return LIBUSB_ERROR_INVALID_PARAM;
	r = handle_exchange(dev_handle, 'B', endpoint, 0, 0, 0, (uint32_t)length, timeout,
			    in ? NULL : data, in ? 0 : (uint32_t)length, in ? data : NULL,
			    in ? (uint32_t)length : 0, &got);
	if (actual_length)
		*actual_length = (int)got;
	return r < 0 ? r : LIBUSB_SUCCESS;
}
