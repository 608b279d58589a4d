"""The twin board's Rockusb device: what Debian's real rkdeveloptool talks to.

A real RK3576 in Maskrom or in U-Boot's rockusb mode is a USB device; the twin's boards
are QEMU guests with none. Each board gets a small TCP server here (:class:`RockusbServer`)
and the tool gets a stand-in libusb (``hil/twin/usbstub``) that turns its USB calls into
requests to those servers. The server answers as the device would, so the unmodified
tool lists, loads and writes twin boards with its own output and its own failures.

Use::

    board = DiskBoard(path, capacity=2 * 1024 * 1024, bus=1, ports=(9,))
    with RockusbServer(board).start() as server:
        env = usbstub.tool_env([server.endpoint])     # TWIN_ROCKUSB + LD_LIBRARY_PATH
        subprocess.run(["rkdeveloptool", "ld"], env=env, timeout=60)

Framed protocol (the stub's side is documented in ``usbstub/libusb-stub.c``), all
integers little-endian, one reply per request on one TCP connection:

- request: ``u32 body_len | u8 op | u8 ep_or_type | u8 request | u8 0 | u16 value |
  u16 index | u32 length | u32 timeout_ms | data``; op ``Q`` query, ``O`` open,
  ``C`` control (bmRequestType, bRequest, wValue, wIndex, wLength), ``B`` bulk
  (endpoint address; length = bytes sent, or the most to receive), ``R`` reset device.
- reply: ``u32 body_len | i32 result | u32 actual | data``; result 0 or a libusb error
  code (-9 PIPE for a stall, -7 TIMEOUT when the device has nothing to send, -4
  NO_DEVICE when it is gone). The QUERY record is ``u8 present | u8 mode (0 none,
  1 Maskrom, 2 Loader) | u16 idVendor | u16 idProduct | u16 bcdUSB | u16 bcdDevice |
  u8 bus | u8 nports | ports``.

Protocol facts this relies on (rkdeveloptool at Debian's 46bb4c0 and its repository;
Rockchip U-Boot drivers/usb/gadget/f_rockusb.c and include/rockusb.h):

- Mode: rkdeveloptool calls a VID 0x2207 device with PID >= 0x100 a Rockusb device and
  reads the mode from **bcdUSB** bit 0: 0 Maskrom, 1 Loader (RKScan.cpp
  ``CRKScan::Search``, ``IsRockusbDevice``). U-Boot's rockusb sets bcdUSB 0x0201, and
  0x0200 when built as the usbplug that ``db`` loads (f_rockusb.c
  ``g_dnl_bind_fixup``), so after ``db`` the device still lists as Maskrom.
  An RK3576 is 2207:350e (Radxa ROCK 4D docs); a BootROM reports bcdDevice 1.00
  (kernel log in a Radxa forum post, RK3588 in Maskrom).
- LocationID = bus number << 8 | port number, printed ``%x`` (RKScan.cpp
  ``EnumerateUsbDevice``, main.cpp ``list_device``): bus 1 port 9 is ``109``.
- Interface: class 0xff, subclass 6, protocol 5, one bulk IN and one bulk OUT endpoint
  (RKComm.cpp ``CRKUsbComm::InitializeUsb``; f_rockusb.c ``rkusb_intf_desc``).
- ``db``: each 471 then each 472 entry of the loader goes as vendor control transfers
  (bmRequestType 0x40, bRequest 0x0C, wValue 0, wIndex 0x0471/0x0472) of at most 4096
  bytes; the entry is followed by its CRC16 (``CRC_CCITT``, initial 0xFFFF, poly
  0x1021, crc.cpp), big-endian; when the entry size is 4095 mod 4096 one zero byte is
  added before the CRC, when it is 4094 mod 4096 a 1-byte packet follows the transfer
  (RKComm.cpp ``RKU_DeviceRequest``). A chunk shorter than 4096 therefore ends an entry.
  The tool sends the entries as stored in the file (RKBoot.cpp ``GetEntryData``), which
  boot_merger RC4-encrypts (see :mod:`hil.twin.loader`); the device decrypts them.
  Any failed chunk makes ``DownloadBoot`` return -4: ``Downloading bootloader failed!``
  (RKDevice.cpp, main.cpp ``download_boot``). The tool only sends them to a Maskrom
  device (``RKU_DeviceRequest``); in Loader it prints ``The device does not support this
  operation!``.
- Bulk commands: a 31-byte CBW (``USBC``, tag, transfer length, flags 0x80 IN / 0x00
  OUT, LUN, CB length, then a 16-byte CB: opcode, subcode, big-endian u32 LBA, reserved,
  big-endian u16 sector count), optional data, a 13-byte CSW (``USBS``, the same tag,
  residue, status 0 ok / 1 failed) (RKComm.h ``CBW``/``CSW``/``CBWCB``, RKComm.cpp
  ``InitializeCBW``). The tool checks the CSW tag, and status 1 is a failure.
  Opcodes: TEST_UNIT_READY 0x00, READ_FLASH_ID 0x01, READ_LBA 0x14, WRITE_LBA 0x15,
  READ_FLASH_INFO 0x1A, READ_CHIP_INFO 0x1B, ERASE_LBA 0x25, CHANGE_STORAGE 0x2A,
  READ_STORAGE 0x2B, READ_CAPABILITY 0xAA, DEVICE_RESET 0xFF (RKComm.h; rockusb.h).
- Answers, as U-Boot's rockusb gives them for an eMMC (f_rockusb.c): flash ID
  ``EMMC ``; flash info 11 bytes ``u32 sectors, u16 block 1024, u8 page 4, ecc 0,
  access time 40, manufacturer 0, flash mask 1``; capability byte 0 = Direct LBA |
  First 4M access | bit 4, byte 1 = switch storage | LBA write parity; storage media
  ``1 << 1`` (eMMC) and ``cs 1`` selects it; TEST_UNIT_READY residue ``6 << 24``;
  DEVICE_RESET replies, then resets: subcode 3 to the BootROM (Maskrom), others boot.
- READ_FLASH_INFO reads up to 512 bytes with a 5 s timeout, READ_CAPABILITY reads its 8
  bytes as a short packet, others read exactly their length with no timeout (RKComm.cpp;
  ``CMD_TIMEOUT`` 0). ``rl``/``wl`` move 128 sectors per command (main.cpp
  ``DEFAULT_RW_LBA``); ``ppt`` reads LBA 0-33 and checks ``EFI PART``, then LBA 0x2000
  for a ``PARM`` parameter block (``print_gpt``, ``print_parameter``).
- A board in Maskrom without ``db`` answers no storage command: ``rfi`` prints
  ``Read Flash Info failed!``, ``ppt`` prints ``Read GPT failed!``, ``Read parameter
  failed!`` and ``Not found any partition table!`` (rkdeveloptool issue #69, NanoPC-T4;
  a Radxa forum post, ROCK 5A). The twin stalls the bulk endpoints there [infer: the
  BootROM has no command handler; the tool's output is the same for a stall or a
  failed read].
- Chip info: 16 bytes, the chip's four digits as a little-endian word, ``rci`` printing
  ``Chip Info: 41 32 32 33 FF ...`` on an RK322x (Armbian forum) [infer for the RK3576:
  ``36 37 35 33`` then zeros].
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import attr

from hil.twin import loader

log = logging.getLogger("hil.twin.rockusb")

VID_ROCKCHIP = 0x2207
PID_RK3576 = 0x350E
BCD_USB = {"Maskrom": 0x0200, "Loader": 0x0201}
BCD_DEVICE = 0x0100
MODE_CODE = {None: 0, "Maskrom": 1, "Loader": 2}
SECTOR = 512

# libusb error codes (libusb.h) carried in replies
LIBUSB_SUCCESS = 0
LIBUSB_ERROR_IO = -1
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_PIPE = -9

OP_QUERY, OP_OPEN, OP_CONTROL, OP_BULK, OP_RESET = (ord(c) for c in "QOCBR")
REQUEST = struct.Struct("<BBBBHHII")  # after the u32 body length
REPLY = struct.Struct("<IiI")  # body length, result, actual
MAX_BODY = 16 << 20

EP_IN, EP_OUT = 0x81, 0x01
VENDOR_OUT, VENDOR_REQUEST = 0x40, 0x0C
CODE_471, CODE_472 = 0x0471, 0x0472
CHUNK = 4096

CBW_SIGN, CSW_SIGN = 0x43425355, 0x53425355
CBW_SIZE, CSW_SIZE = 31, 13
TEST_UNIT_READY, READ_FLASH_ID, READ_LBA, WRITE_LBA = 0x00, 0x01, 0x14, 0x15
READ_FLASH_INFO, READ_CHIP_INFO, ERASE_LBA = 0x1A, 0x1B, 0x25
CHANGE_STORAGE, READ_STORAGE, READ_CAPABILITY, DEVICE_RESET = 0x2A, 0x2B, 0xAA, 0xFF
STORAGE_EMMC = 1  # ``cs 1``; media word 1 << 1
CAPABILITY = bytes([0x01 | 0x04 | 0x10, 0x02 | 0x04, 0, 0, 0, 0, 0, 0])
RESET_TO_MASKROM = 3


class LoaderRefused(Exception):
    """The board will not run the downloaded loader (built for another SoC, or not now)."""


class StorageError(Exception):
    """A storage access the board refuses (beyond the end of the device)."""


@runtime_checkable
class RockusbBoard(Protocol):
    """What the Rockusb server needs from a board; the twin's boards and :class:`DiskBoard`.

    ``mode()`` is None while the board is not in a USB download mode (booted, powered
    off, unplugged): the device is then absent.
    """

    def mode(self) -> str | None:
        """None, "Maskrom" (BootROM, or the usbplug after ``db``) or "Loader" (U-Boot rockusb)."""

    def location(self) -> tuple[int, tuple[int, ...]]:
        """(bus number, port path) of the board's USB device on the host."""

    def download_boot(self, entry_471: bytes, entry_472: bytes) -> None:
        """Run the decrypted 471/472 entries; raise :class:`LoaderRefused` for a foreign loader."""

    def loader_ready(self) -> bool:
        """True once a loader runs (after ``db``, or in Loader mode): storage commands work."""

    def capacity_sectors(self) -> int:
        """Size of the storage (eMMC user area) in 512-byte sectors."""

    def read(self, lba: int, count: int) -> bytes:
        """``count`` sectors from ``lba``; raise :class:`StorageError` beyond the end."""

    def write(self, lba: int, data: bytes) -> None:
        """Write whole sectors at ``lba``; raise :class:`StorageError` beyond the end."""

    def reset(self, subcode: int = 0) -> None:
        """DEVICE_RESET: subcode 3 goes back to the BootROM, others leave the download mode."""


# ------------------------------------------------------------------ checksums


def _crc_ccitt_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = 0
        for i in range(8):
            bit = (byte >> (7 - i)) & 1
            top = (crc >> 15) & 1
            crc = (crc << 1) & 0xFFFF
            if top ^ bit:
                crc ^= 0x1021
        table.append(crc)
    return table


def crc_ccitt(data: bytes) -> int:
    """rkdeveloptool's ``CRC_CCITT`` (crc.cpp): initial 0xFFFF, poly 0x1021, MSB first."""
    # crc.cpp shifts the register then XORs the poly for the data bit: the same as the
    # table form of CRC-16/CCITT-FALSE, which this is.
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


_CRC16 = _crc_ccitt_table()


def entry_request(entry: bytes) -> list[bytes]:
    """The control chunks rkdeveloptool sends for one entry (``RKU_DeviceRequest``); for tests."""
    data = bytearray(entry)
    pend = False
    if len(data) % CHUNK == 4095:
        data.append(0)
    elif len(data) % CHUNK == 4094:
        pend = True
    crc = crc_ccitt(bytes(data))
    data += bytes([crc >> 8, crc & 0xFF])
    chunks = [bytes(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
    return chunks + ([b"\0"] if pend else [])


def chip_info(chip: str) -> bytes:
    """READ_CHIP_INFO's 16 bytes: the chip's digits as a little-endian word, then zeros."""
    return chip[2:6].encode()[::-1].ljust(16, b"\0")


def csw(tag: int, status: int, residue: int = 0) -> bytes:
    return struct.pack("<IIIB", CSW_SIGN, tag, residue, status)


# ------------------------------------------------------------------ a board on a disk file


def check_loader(chip: str, entry_471: bytes, entry_472: bytes) -> None:
    """Refuse the downloaded entries unless both are this SoC's (the twin loader's marker)."""
    for role, data in (("471", entry_471), ("472", entry_472)):
        found = loader.entry_chip(data)
        if found != chip:
            raise LoaderRefused(f"{role} entry is for {found or 'an unknown SoC'}, this board is an {chip}")


@attr.s(auto_attribs=True, eq=False)
class RawDisk:
    """A board's eMMC user area as a sparse raw file: what ``rl``/``wl``/``ef`` read and write."""

    path: Path = attr.ib(converter=Path)
    capacity: int = 2 * 1024 * 1024  # sectors: 1 GiB
    _lock: threading.RLock = attr.ib(factory=threading.RLock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                f.truncate(self.capacity * SECTOR)

    def capacity_sectors(self) -> int:
        return self.capacity

    def _check(self, lba: int, count: int) -> None:
        if lba < 0 or count < 0 or lba + count > self.capacity:
            raise StorageError(f"sectors {lba}+{count} beyond the end ({self.capacity} sectors)")

    def read(self, lba: int, count: int) -> bytes:
        self._check(lba, count)
        with self._lock, open(self.path, "rb") as f:
            f.seek(lba * SECTOR)
            return f.read(count * SECTOR).ljust(count * SECTOR, b"\0")

    def write(self, lba: int, data: bytes) -> None:
        count = -(-len(data) // SECTOR)
        self._check(lba, count)
        with self._lock, open(self.path, "r+b") as f:
            f.seek(lba * SECTOR)
            f.write(data.ljust(count * SECTOR, b"\0"))

    def erase(self, lba: int, count: int) -> None:
        """Zero sectors, touching only the file's data extents (a sparse file stays sparse)."""
        self._check(lba, count)
        start, end = lba * SECTOR, (lba + count) * SECTOR
        zeros = bytes(1 << 20)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR)
            try:
                pos = start
                while pos < end:
                    try:
                        data = os.lseek(fd, pos, os.SEEK_DATA)
                    except OSError:  # ENXIO: no data after pos
                        break
                    if data >= end:
                        break
                    hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
                    for off in range(data, hole, len(zeros)):
                        os.pwrite(fd, zeros[: min(len(zeros), hole - off)], off)
                    pos = hole
            finally:
                os.close(fd)


@attr.s(auto_attribs=True, eq=False)
class DiskBoard(RawDisk):
    """A board that is nothing but its eMMC and its USB download modes: the server's board for
    tests and tools. ``state`` is "maskrom" (BootROM), "usbplug" (``db`` done: loader in RAM,
    still listed as Maskrom), "loader" (U-Boot rockusb) or "off" (no USB download device).
    """

    bus: int = 1
    ports: tuple[int, ...] = attr.ib(default=(1,), converter=tuple)
    state: str = "maskrom"
    chip: str = "RK3576"

    def mode(self) -> str | None:
        return {"maskrom": "Maskrom", "usbplug": "Maskrom", "loader": "Loader"}.get(self.state)

    def location(self) -> tuple[int, tuple[int, ...]]:
        return self.bus, self.ports

    def download_boot(self, entry_471: bytes, entry_472: bytes) -> None:
        with self._lock:
            if self.state != "maskrom":
                raise LoaderRefused(f"the BootROM is not running (state {self.state})")
            check_loader(self.chip, entry_471, entry_472)
            self.state = "usbplug"

    def loader_ready(self) -> bool:
        return self.state in ("usbplug", "loader")

    def reset(self, subcode: int = 0) -> None:
        with self._lock:
            self.state = "maskrom" if subcode == RESET_TO_MASKROM else "off"

    def unplug(self) -> None:
        self.state = "off"

    def enter_maskrom(self) -> None:
        self.state = "maskrom"

    def enter_loader(self) -> None:
        self.state = "loader"


# ------------------------------------------------------------------ the device's protocol


class _Gone(Exception):
    """The device disappeared: reply NO_DEVICE and drop the connection."""


@attr.s(auto_attribs=True, eq=False)
class _Session:
    """One open handle (one TCP connection): the device's transfer state as the tool sees it."""

    server: RockusbServer
    opened: bool = False
    pending_in: collections.deque = attr.ib(factory=collections.deque)
    write_cbw: tuple | None = None  # (tag, lba, count) of a WRITE_LBA awaiting its data
    write_need: int = 0
    write_buf: bytearray = attr.ib(factory=bytearray)
    ctrl: dict = attr.ib(factory=lambda: {CODE_471: bytearray(), CODE_472: bytearray()})
    entries: dict = attr.ib(factory=lambda: {CODE_471: [], CODE_472: []})
    after_reply: object = None  # run once the current reply has been sent

    @property
    def board(self) -> RockusbBoard:
        return self.server.board

    # -- vendor requests: the BootROM's loader download

    def control(self, req_type: int, request: int, value: int, index: int, data: bytes) -> tuple[int, bytes, int]:
        if req_type != VENDOR_OUT or request != VENDOR_REQUEST or index not in (CODE_471, CODE_472):
            return LIBUSB_ERROR_PIPE, b"", 0
        if self.board.mode() != "Maskrom" or self.board.loader_ready():
            return LIBUSB_ERROR_PIPE, b"", 0  # only the BootROM takes loader entries
        buf = self.ctrl[index]
        buf += data
        if len(data) == CHUNK:
            return LIBUSB_SUCCESS, b"", len(data)
        raw = bytes(buf)
        buf.clear()
        if len(data) == 1 and len(raw) > 1 and (len(raw) - 1) % CHUNK == 0:
            raw = raw[:-1]  # the 1-byte packet after a transfer of whole 4096-byte chunks
        if len(raw) < 2 or crc_ccitt(raw[:-2]) != (raw[-2] << 8 | raw[-1]):
            log.info("rockusb %s: 0x%x entry CRC16 mismatch", self.server.endpoint, index)
            return LIBUSB_ERROR_PIPE, b"", 0
        body = raw[:-2]
        self.entries[index].append(body if body.startswith(loader.MARKER_PREFIX) else loader.rc4(body))
        if index == CODE_472:
            e471, e472 = b"".join(self.entries[CODE_471]), b"".join(self.entries[CODE_472])
            self.entries = {CODE_471: [], CODE_472: []}
            try:
                self.board.download_boot(e471, e472)
            except LoaderRefused as exc:
                log.info("rockusb %s: loader refused: %s", self.server.endpoint, exc)
                return LIBUSB_ERROR_PIPE, b"", 0
        return LIBUSB_SUCCESS, b"", len(data)

    # -- bulk: CBW / data / CSW

    def bulk(self, endpoint: int, length: int, data: bytes) -> tuple[int, bytes, int]:
        if not self.board.loader_ready():
            return LIBUSB_ERROR_PIPE, b"", 0  # the BootROM has no command handler
        if endpoint == EP_OUT:
            if self.write_cbw is not None:
                self.write_buf += data
                if len(self.write_buf) >= self.write_need:
                    self._finish_write()
                return LIBUSB_SUCCESS, b"", len(data)
            if len(data) != CBW_SIZE or struct.unpack_from("<I", data)[0] != CBW_SIGN:
                return LIBUSB_ERROR_PIPE, b"", 0
            self._command(data)
            return LIBUSB_SUCCESS, b"", len(data)
        if endpoint == EP_IN:
            if not self.pending_in:
                return LIBUSB_ERROR_TIMEOUT, b"", 0  # a device with nothing to send NAKs
            item, after = self.pending_in.popleft()
            if len(item) > length:
                self.pending_in.appendleft((item[length:], after))
                item, after = item[:length], None
            self.after_reply = after
            return LIBUSB_SUCCESS, item, len(item)
        return LIBUSB_ERROR_PIPE, b"", 0

    def _reply(self, tag: int, data: bytes | None, status: int, residue: int = 0, after=None) -> None:
        if data is not None:
            self.pending_in.append((data, None))
        self.pending_in.append((csw(tag, status, residue), after))

    def _command(self, cbw: bytes) -> None:
        _, tag, xfer, _flags, _lun, _cblen = struct.unpack_from("<IIIBBB", cbw)
        cb = cbw[15:31]
        op, sub = cb[0], cb[1]
        lba = struct.unpack_from(">I", cb, 2)[0]
        count = struct.unpack_from(">H", cb, 7)[0]
        board = self.board
        self.pending_in.clear()
        self.write_cbw, self.write_buf = None, bytearray()
        with self.server.board_lock:
            if op == TEST_UNIT_READY:
                self._reply(tag, None, 0, residue=0x06 << 24)
            elif op == READ_FLASH_ID:
                self._reply(tag, b"EMMC ", 0)
            elif op == READ_FLASH_INFO:
                sectors = board.capacity_sectors()
                self._reply(tag, struct.pack("<IHBBBBB", sectors, 1024, 4, 0, 40, 0, 1 if sectors else 0), 0)
            elif op == READ_CHIP_INFO:
                self._reply(tag, chip_info(getattr(board, "chip", "RK3576")), 0)
            elif op == READ_CAPABILITY:
                self._reply(tag, CAPABILITY, 0)
            elif op == READ_STORAGE:
                self._reply(tag, struct.pack("<I", 1 << STORAGE_EMMC)[: min(4, xfer or 4)], 0)
            elif op == CHANGE_STORAGE:
                self._reply(tag, None, 0 if sub == STORAGE_EMMC else 1)
            elif op == READ_LBA:
                try:
                    self._reply(tag, board.read(lba, count), 0)
                except StorageError as exc:
                    log.info("rockusb %s: read refused: %s", self.server.endpoint, exc)
                    self._reply(tag, b"", 1)
            elif op == WRITE_LBA:
                self.write_cbw, self.write_need = (tag, lba, count), xfer or count * SECTOR
                if self.write_need == 0:
                    self._finish_write()
            elif op == ERASE_LBA:
                try:
                    self._erase(lba, count)
                    self._reply(tag, None, 0)
                except StorageError:
                    self._reply(tag, None, 1)
            elif op == DEVICE_RESET:
                # U-Boot answers, then resets when the CSW has gone (f_rockusb.c __do_reset)
                self._reply(tag, None, 0, after=lambda: self.server.reset_board(sub))
            else:
                self._reply(tag, None, 1)

    def _erase(self, lba: int, count: int) -> None:
        board = self.board
        if hasattr(board, "erase"):
            board.erase(lba, count)
            return
        for start in range(lba, lba + count, 2048):
            board.write(start, bytes(min(2048, lba + count - start) * SECTOR))

    def _finish_write(self) -> None:
        tag, lba, count = self.write_cbw
        data = bytes(self.write_buf[: count * SECTOR])
        self.write_cbw, self.write_buf, self.write_need = None, bytearray(), 0
        with self.server.board_lock:
            try:
                self.board.write(lba, data)
                status = 0
            except StorageError as exc:
                log.info("rockusb %s: write refused: %s", self.server.endpoint, exc)
                status = 1
        self._reply(tag, None, status)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.owner._serve(self.request)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


@attr.s(auto_attribs=True, eq=False)
class RockusbServer:
    """One board's Rockusb endpoint: a threaded TCP server speaking the framed protocol.

    ``idle_timeout`` bounds how long a connection may sit between requests, and
    ``io_timeout`` how long one request or reply may take on the wire.
    """

    board: RockusbBoard
    host: str = "127.0.0.1"
    port: int = 0
    idle_timeout: float = 60.0
    io_timeout: float = 10.0
    board_lock: threading.RLock = attr.ib(factory=threading.RLock, init=False, repr=False)
    _srv: _TCPServer | None = attr.ib(default=None, init=False, repr=False)
    _thread: threading.Thread | None = attr.ib(default=None, init=False, repr=False)
    _conns: set = attr.ib(factory=set, init=False, repr=False)
    _unplugged: bool = attr.ib(default=False, init=False)

    def start(self) -> RockusbServer:
        srv = _TCPServer((self.host, self.port), _Handler, bind_and_activate=True)
        srv.owner = self
        self._srv = srv
        self.host, self.port = srv.server_address[:2]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"rockusb-{self.port}", daemon=True)
        self._thread.start()
        log.debug("rockusb server for %r on %s", self.board, self.endpoint)
        return self

    def stop(self) -> None:
        if self._srv is None:
            return
        self._srv.shutdown()
        self._srv.server_close()
        self._drop_connections()
        if self._thread:
            self._thread.join(timeout=5)
        self._srv = None

    def __enter__(self) -> RockusbServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``host:port``, an item of the stub's ``TWIN_ROCKUSB``."""
        return f"{self.host}:{self.port}"

    def present(self) -> bool:
        """Whether the device is on the bus: the server is not unplugged and the board in a USB mode."""
        with self.board_lock:
            return not self._unplugged and self.board.mode() is not None

    def unplug(self) -> None:
        """Pull the cable: the device leaves the bus and open handles fail (NO_DEVICE)."""
        self._unplugged = True
        self._drop_connections()

    def replug(self) -> None:
        self._unplugged = False

    def reset_board(self, subcode: int) -> None:
        with self.board_lock:
            self.board.reset(subcode)
        # a reset device re-enumerates: its open handles are gone
        self._drop_connections()

    def _drop_connections(self) -> None:
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def query_record(self) -> bytes:
        with self.board_lock:
            mode = None if self._unplugged else self.board.mode()
            if mode is None:
                return bytes(12)
            bus, ports = self.board.location()
        ports = tuple(ports)[:7]
        return struct.pack("<BBHHHHBB", 1, MODE_CODE[mode], VID_ROCKCHIP, PID_RK3576, BCD_USB[mode],
                           BCD_DEVICE, bus, len(ports)) + bytes(ports)

    # -- one connection

    def _serve(self, sock: socket.socket) -> None:
        self._conns.add(sock)
        session = _Session(self)
        try:
            while True:
                sock.settimeout(self.idle_timeout)
                head = _recv_exact(sock, 4)
                sock.settimeout(self.io_timeout)
                body_len = struct.unpack("<I", head)[0]
                if body_len < REQUEST.size or body_len > MAX_BODY + REQUEST.size:
                    return
                body = _recv_exact(sock, body_len)
                op, ep_type, request, _, value, index, length, _timeout = REQUEST.unpack_from(body)
                data = body[REQUEST.size:]
                try:
                    result, payload, actual = self._dispatch(session, op, ep_type, request, value, index, length, data)
                except _Gone:
                    result, payload, actual = LIBUSB_ERROR_NO_DEVICE, b"", 0
                sock.sendall(REPLY.pack(REPLY.size - 4 + len(payload), result, actual) + payload)
                if result == LIBUSB_ERROR_NO_DEVICE:
                    return
                after, session.after_reply = session.after_reply, None
                if after:
                    after()
        except (OSError, ConnectionError):
            return
        finally:
            self._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _dispatch(self, session: _Session, op: int, ep_type: int, request: int, value: int, index: int,
                  length: int, data: bytes) -> tuple[int, bytes, int]:
        if op == OP_QUERY:
            record = self.query_record()
            return LIBUSB_SUCCESS, record, len(record)
        if not self.present():
            raise _Gone()
        if op == OP_OPEN:
            session.opened = True
            return LIBUSB_SUCCESS, b"", 0
        if not session.opened:
            return LIBUSB_ERROR_IO, b"", 0
        if op == OP_RESET:
            return LIBUSB_SUCCESS, b"", 0
        if op == OP_CONTROL:
            with self.board_lock:
                result = session.control(ep_type, request, value, index, data)
        elif op == OP_BULK:
            result = session.bulk(ep_type, length, data)
        else:
            return LIBUSB_ERROR_IO, b"", 0
        if not self.present():
            raise _Gone()
        return result


def serve(board: RockusbBoard, host: str = "127.0.0.1", port: int = 0) -> RockusbServer:
    """Start a Rockusb server for ``board``; stop it with ``.stop()``."""
    return RockusbServer(board, host=host, port=port).start()
