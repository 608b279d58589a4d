"""The virtual bench's rockusb loader and flash service, as a labgrid resource and driver.

Example environment entry::

    resources:
      TwinUSBLoader: {url: 'http://127.0.0.1:21000', index: 1}
    drivers:
      TwinFlashDriver: {}
"""

import os
import time

import attr
from labgrid.driver import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.factory import target_factory
from labgrid.resource import Resource
from labgrid.step import step

from hil.lab.flashprotocol import FlashProtocol


@target_factory.reg_resource
@attr.s(eq=False)
class TwinUSBLoader(Resource):
    """A board's rockusb device on the virtual bench, reached through its flash service.

    Args:
        url (str): base URL of the bench's HTTP service
        index (int): board number on the bench
    """

    url = attr.ib(validator=attr.validators.instance_of(str))
    index = attr.ib(default=1, converter=int)


@target_factory.reg_driver
@attr.s(eq=False)
class TwinFlashDriver(Driver, FlashProtocol):
    """Flashes through the bench's flash service: db when in maskrom, wl 0, rd."""

    bindings = {"loader": "TwinUSBLoader"}
    request_timeout = attr.ib(default=120.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        import requests

        self._requests = requests

    def _url(self, *parts: str) -> str:
        return "/".join([self.loader.url.rstrip("/"), "usb", str(self.loader.index), *parts])

    def _call(self, method: str, *parts: str, **kwargs):
        try:
            res = self._requests.request(method, self._url(*parts), timeout=self.request_timeout, **kwargs)
        except self._requests.RequestException as e:
            raise ExecutionError(f"flash service at {self.loader.url} unreachable: {e}") from e
        if res.status_code >= 400:
            raise ExecutionError(f"flash service refused {method} {'/'.join(parts) or 'state'}: {res.text.strip()}")
        return res

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
                raise TimeoutError(f"no rockusb device (2207:350e) appeared on board {self.loader.index} "
                                   f"within {timeout:.0f} s: the board did not enter loader mode")
            time.sleep(0.1)

    @Driver.check_active
    @step(args=["filename", "wipe_userdata"])
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        dev = self.device()
        if not dev["present"]:
            raise ExecutionError("Did not find any rockusb device, please plug device in! "
                                 f"(board {self.loader.index} is not in loader mode)")
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
