"""The virtual bench's rockusb loader and flash service, as a labgrid resource and driver.

Example environment entry::

    resources:
      TwinUSBLoader: {url: 'http://127.0.0.1:21000', index: 1}
    drivers:
      TwinFlashDriver: {}

The same resource serves the real tool: with ``RKDeveloptoolDriver`` instead of
``TwinFlashDriver`` (env/twin-rkdeveloptool.yaml), Debian's rkdeveloptool runs with the twin's
stand-in libusb in its own environment (``wrap_command``) and flashes the board through its
Rockusb device, as on a lab host (``hil.twin.rockusb``).
"""

import os
import time

import attr
from labgrid.driver import Driver
from labgrid.factory import target_factory
from labgrid.resource import Resource
from labgrid.step import step

from hil.lab.flashprotocol import FlashProtocol
from hil.rockchip import flashtools


@target_factory.reg_resource
@attr.s(eq=False)
class TwinUSBLoader(Resource):
    """A board's rockusb device on the virtual bench, reached through its flash service.

    Args:
        url (str): base URL of the bench's HTTP service
        index (int): board number on the bench
        rockusb (str): ``host:port`` of the Rockusb devices of every board of the bench, for
            the real tool; busnum and path (``3-N``) say where this board's is, as a USB
            loader resource does
    """

    url = attr.ib(validator=attr.validators.instance_of(str))
    index = attr.ib(default=1, converter=int)
    rockusb = attr.ib(default="", validator=attr.validators.instance_of(str))
    busnum = attr.ib(default=None)
    path = attr.ib(default=None)

    def wrap_command(self, command):
        """A tool run for this loader sees the bench's boards through the stand-in libusb: it is
        put first on LD_LIBRARY_PATH of that process only, never of the caller."""
        if not self.rockusb:
            return command
        from hil.twin import usbstub

        lib = usbstub.build()
        return ["env", f"LD_LIBRARY_PATH={lib.parent}", f"{usbstub.ENV_ENDPOINTS}={self.rockusb}", *command]


@target_factory.reg_driver
@attr.s(eq=False)
class TwinFlashDriver(Driver, FlashProtocol):
    """Flashes through the bench's flash service: db when in maskrom, wl 0, rd.

    Failures are the real drivers' ``FlashToolError`` subclasses, so callers (the strategy's
    loader fallback, reports) treat a virtual and a real board alike.
    """

    bindings = {"loader": "TwinUSBLoader"}
    request_timeout = attr.ib(default=120.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        import requests

        self._requests = requests

    def _url(self, *parts: str) -> str:
        return "/".join([self.loader.url.rstrip("/"), "usb", str(self.loader.index), *parts])

    def _call(self, method: str, *parts: str, **kwargs):
        what = f"{method} {'/'.join(parts) or 'state'}"
        try:
            res = self._requests.request(method, self._url(*parts), timeout=self.request_timeout, **kwargs)
        except self._requests.RequestException as e:
            raise flashtools.ToolMissing(
                f"the bench's flash service at {self.loader.url} did not answer {what} ({type(e).__name__}): "
                "start the bench (hil twin up) or fix TwinUSBLoader's url") from e
        if res.status_code >= 400:
            raise self._refusal(parts, res.status_code, res.text.strip())
        return res

    def _refusal(self, parts: tuple[str, ...], status: int, text: str) -> flashtools.FlashToolError:
        """The bench's refusal (one line naming the cause) as the error a real flash tool would give.

        The bench's line goes into the message itself: there is no tool output to attach.
        """
        board = f"board {self.loader.index}"
        if "not in loader mode" in text or "no rockusb device" in text:
            return flashtools.NoLoaderDevice(f"{board}: {text}: {flashtools.NOT_IN_LOADER_HINT}")
        if "download the loader" in text:
            return flashtools.WrongMode(f"{board}: {text}")
        if parts == ("image",) and status == 400:
            return flashtools.WriteFailed(f"{board} refused the image, nothing was written: {text}; flash a "
                                          "twin firmware image (hil twin build writes them)")
        if parts == ("db",):
            return flashtools.LoaderDownloadFailed(f"{board}: the loader download failed: {text}")
        if parts == ("reset",):
            return flashtools.ResetFailed(f"{board} did not accept the reset: {text}")
        return flashtools.ToolFailed(f"the flash service refused {'/'.join(parts) or 'state'} for {board} "
                                     f"(HTTP {status}): {text}")

    def device(self) -> dict:
        """What the loader USB port shows: present, mode, vid, pid."""
        return self._call("GET").json()

    @Driver.check_active
    @step(args=["timeout"], result=True)
    def await_loader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            dev = self.device()
            if dev["present"]:
                return dev["mode"]
            if time.monotonic() > deadline:
                raise flashtools.LoaderTimeout(f"no rockusb device (2207:350e) appeared on board {self.loader.index} "
                                               f"within {timeout:.1f} s: {flashtools.NOT_IN_LOADER_HINT}")
            time.sleep(0.1)

    @Driver.check_active
    @step(args=["filename", "wipe_userdata"])
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        dev = self.device()
        if not dev["present"]:
            raise flashtools.NoLoaderDevice(f"board {self.loader.index} is not in loader mode (no rockusb device): "
                                            f"{flashtools.NOT_IN_LOADER_HINT}")
        if dev["mode"] == "Maskrom" and not dev["loader_ready"]:
            self._call("POST", "db")
        size = os.path.getsize(filename)
        with open(filename, "rb") as f:
            self._call("PUT", "image", data=f, params={"wipe_userdata": int(wipe_userdata)},
                       headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})

    @Driver.check_active
    @step()
    def reset(self) -> None:
        self._call("POST", "reset")
