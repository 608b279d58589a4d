"""Flash a real RK3576 over its rockusb port with rkdeveloptool, behind FlashProtocol.

Example environment entry::

    images:
      rk3576-loader: firmware/rk3576_spl_loader_v1.12.108.bin
    tools:
      rkdeveloptool: /usr/bin/rkdeveloptool   # on the exporter when the loader is remote
    targets:
      main:
        resources:
          RKUSBLoader: {match: {ID_PATH: 'pci-0000:00:14.0-usb-0:3.2'}}
        drivers:
          RKDeveloptoolDriver: {loader_image: rk3576-loader, storage: emmc}

rkdeveloptool 1.32 has no option to pick a device and refuses storage commands when more than
one rockusb device is connected, so one board per host in loader mode at a time is assumed:
the driver checks that ``ld`` lists exactly one 2207:350e device and that it sits at the USB
port of the target's loader resource, and fails with the reason otherwise.

labgrid waits for the loader resource when the driver is activated, so activate it (or call
``get_driver``) once the board is in loader mode; ``await_loader`` then waits for the board to
come back after a reset or power cycle.
"""

from __future__ import annotations

import os
import subprocess
import time

import attr
from labgrid.binding import BindingState
from labgrid.driver import Driver
from labgrid.exceptions import NoResourceFoundError
from labgrid.factory import target_factory
from labgrid.resource.common import NetworkResource
from labgrid.step import step
from labgrid.util.helper import processwrapper
from labgrid.util.managedfile import ManagedFile

from hil.lab.flashprotocol import FlashProtocol
from hil.rockchip import flashtools

#: Short commands (ld, db, cs, rd) never legitimately take long; only the image write does.
SHORT_COMMAND_TIMEOUT = 60.0
#: After ``db`` the board re-enumerates while usbplug starts; the next command may briefly find no device.
SETTLE_AFTER_DB = 5.0


def await_loader_resource(driver, timeout: float) -> float:
    """Wait until the driver's USB loader resource is present (and the driver active); the deadline."""
    timeout = float(timeout)  # labgrid's Timeout refuses ints
    deadline = time.monotonic() + timeout
    try:
        driver.target.await_resources([driver.loader], timeout)
    except NoResourceFoundError as e:
        raise flashtools.LoaderTimeout(
            f"no rockusb device appeared for {driver.loader.name or 'the loader'} within {timeout:g} s: "
            f"{flashtools.NOT_IN_LOADER_HINT}") from e
    if driver.state is not BindingState.active:
        # labgrid deactivates a driver whose managed resource vanished (the board left loader mode
        # and came back); the loader is here again, so take this driver back into use
        driver.target.activate(driver)
    return deadline


def run_tool(resource, tool: str, args: list[str], *, timeout: float, verbose: bool = False) -> tuple[int, str]:
    """Run ``tool args`` where ``resource`` is (over SSH for an exported one); (exit status, cleaned output).

    coreutils ``timeout`` bounds the run: processwrapper has no time limit of its own, and a
    stalled USB transfer would otherwise hang the whole session.
    """
    command = [tool, *args]
    if timeout > 0:
        command = ["timeout", "--kill-after=10", f"{timeout:g}", *command]
    where = resource.host if isinstance(resource, NetworkResource) else "this host"
    try:
        output = processwrapper.check_output(resource.wrap_command(command), print_on_silent_log=verbose)
        return 0, flashtools.clean(output)
    except FileNotFoundError as e:
        raise flashtools.ToolMissing(f"{command[0]} is not installed on {where}: install it or set its path "
                                     f"under 'tools:' in the environment") from e
    except subprocess.CalledProcessError as e:
        text = flashtools.clean(e.output or b"")
        name = f"{os.path.basename(tool)} {' '.join(args[:1])}"
        if timeout > 0 and e.returncode in (124, 137):
            raise flashtools.ToolTimeout(
                f"'{name}' did not finish within {timeout:g} s and was stopped: the USB transfer stalled "
                "(cable, hub, board power); power-cycle the board into loader mode and retry", output=text) from e
        if e.returncode in (126, 127):
            raise flashtools.ToolMissing(
                f"'{tool}' could not be run on {where} (exit status {e.returncode}): install it there or set "
                "its path under 'tools:' in the environment", output=text) from e
        return e.returncode, text


@target_factory.reg_driver
@attr.s(eq=False)
class RKDeveloptoolDriver(Driver, FlashProtocol):
    """Flashes with rkdeveloptool: ``db`` the SPL loader when in Maskrom, ``cs``, ``wl 0``, and ``rd``.

    Args:
        loader_image (str): key under ``images:`` of the SPL loader (rk3576_spl_loader_v*.bin),
            needed when the board is in Maskrom
        storage (str): "emmc" (cs 1), "sd" (cs 2), "spinor" (cs 9), or None to skip ``cs`` and
            write to whatever storage the running loader exposes
        timeout (float): upper bound in seconds for writing one image; 0 disables the bound
    """

    bindings = {"loader": {"RKUSBLoader", "NetworkRKUSBLoader"}}

    loader_image = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    storage = attr.ib(default="emmc",
                      validator=attr.validators.optional(attr.validators.in_(flashtools.STORAGE_CODES)))
    timeout = attr.ib(default=1800.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.target.env:
            self.tool = self.target.env.config.get_tool("rkdeveloptool")
        else:
            self.tool = "rkdeveloptool"

    def _run(self, args: list[str], *, long: bool = False) -> tuple[int, str]:
        timeout = self.timeout
        if timeout > 0 and not long:
            timeout = min(timeout, SHORT_COMMAND_TIMEOUT)
        return run_tool(self.loader, self.tool, args, timeout=timeout, verbose=long)

    def _checked(self, args: list[str], check, *, long: bool = False, settle: float = 0.0) -> str:
        """Run, let ``check`` raise the tool's own failure, then insist on exit status 0.

        With ``settle``, a missing device is retried for that long: right after ``db`` the
        board re-enumerates, and nothing has been written yet.
        """
        deadline = time.monotonic() + settle
        while True:
            status, output = self._run(args, long=long)
            try:
                check(output)
                break
            except flashtools.NoLoaderDevice:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
        if status != 0:
            raise flashtools.ToolFailed(f"rkdeveloptool {args[0]} reported success but exited with status {status}",
                                        output=output)
        return output

    def _device(self) -> flashtools.RockusbDevice:
        """The board's rockusb device as ``ld`` lists it, checked to be the one RK3576 at our port."""
        _, output = self._run(flashtools.ld_args())
        device = flashtools.select_rk3576(flashtools.parse_ld(output), output=output)
        flashtools.check_location(device, self.loader.busnum, self.loader.path, output=output)
        return device

    def _loader_path(self) -> str:
        if not self.loader_image:
            raise flashtools.WrongMode(
                "the board is in Maskrom and needs the SPL loader downloaded first: set loader_image to the "
                "'images:' key of rk3576_spl_loader_v*.bin")
        if not self.target.env:
            raise flashtools.LoaderFileError("loader_image is a key under 'images:', which needs an environment")
        return self.target.env.config.get_image_path(self.loader_image)

    def _note_userdata(self, filename: str, wipe_userdata: bool) -> None:
        """Say what ``wl 0`` does to userdata; rkdeveloptool writes the image as it is, it cannot keep or wipe."""
        with open(filename, "rb") as f:
            head = f.read(34 * flashtools.SECTOR)
        fate = flashtools.userdata_fate(head, os.path.getsize(filename))
        if fate == "overwritten" and not wipe_userdata:
            self.logger.warning("userdata starts inside %s, so wl 0 replaces it with the image's: the board's "
                                "userdata is not kept", os.path.basename(filename))
        elif fate == "kept" and wipe_userdata:
            self.logger.warning("userdata starts after the end of %s, so wl 0 leaves the board's userdata in "
                                "place: wipe_userdata cannot be honoured with rkdeveloptool",
                                os.path.basename(filename))
        else:
            self.logger.info("userdata: %s by wl 0 (wipe_userdata=%s)", fate, wipe_userdata)

    @Driver.check_active
    @step(args=["timeout"], result=True)
    def await_loader(self, timeout: float = 30.0) -> str:
        deadline = await_loader_resource(self, timeout)
        while True:  # udev has it; give rkdeveloptool a moment until the device is accessible
            try:
                return self._device().mode
            except flashtools.NoLoaderDevice:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    @Driver.check_active
    @step(result=True)
    def version(self) -> str:
        """The rkdeveloptool version, e.g. "1.32" (``cs`` needs 1.32)."""
        _, output = self._run(flashtools.version_args())
        return flashtools.parse_version(output)

    def _download_loader(self) -> None:
        loader = ManagedFile(self._loader_path(), self.loader)
        loader.sync_to_resource()
        path = loader.get_remote_path()
        self._checked(flashtools.db_args(path), lambda out: flashtools.check_db(out, path), long=True)

    @Driver.check_active
    @step(args=["filename", "wipe_userdata"])
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        self._note_userdata(filename, wipe_userdata)
        image = ManagedFile(filename, self.loader)
        # copy before any tool command: the board already waits in loader mode (the strategy put it
        # there), but a slow or failed copy to an exporter leaves it with nothing written yet
        image.sync_to_resource()
        device = self._device()
        settle = 0.0
        if device.mode == "Maskrom":
            self._download_loader()
            settle = SETTLE_AFTER_DB
        if self.storage is not None:
            self._checked(flashtools.cs_args(self.storage), lambda out: flashtools.check_cs(out, self.storage),
                          settle=settle)
            settle = 0.0
        self._checked(flashtools.wl_args(image.get_remote_path()), flashtools.check_wl, long=True, settle=settle)

    @Driver.check_active
    @step()
    def reset(self) -> None:
        self._checked(flashtools.rd_args(), flashtools.check_rd)
