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
one rockusb device is connected, so one board per host may be in loader mode at a time: the
strategy holds the host's flash lock (``hil.lab.flashlock``) from entering loader mode to the
reset, and before the loader download and again before the image write the driver checks that
``ld`` lists exactly one 2207:350e device and that it sits at the USB port of the target's
loader resource, and fails with the reason otherwise.

labgrid waits for the loader resource when the driver is activated, so activate it (or call
``get_driver``) once the board is in loader mode; ``await_loader`` then waits for the board to
come back after a reset or power cycle.
"""

from __future__ import annotations

import os
import time

import attr
from labgrid.driver import Driver
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.util.managedfile import ManagedFile

from hil.lab.flashtool import FlashToolDriver, retry_for_device
from hil.rockchip import flashtools

#: After ``db`` the board re-enumerates while usbplug starts; the next command may briefly find no device.
SETTLE_AFTER_DB = 5.0


@target_factory.reg_driver
@attr.s(eq=False)
class RKDeveloptoolDriver(FlashToolDriver):
    """Flashes with rkdeveloptool: ``db`` the SPL loader when in Maskrom, ``cs``, ``wl 0``, and ``rd``.

    Args:
        loader_image (str): key under ``images:`` of the SPL loader (rk3576_spl_loader_v*.bin),
            needed when the board is in Maskrom
        storage (str): "emmc" (cs 1), "sd" (cs 2), "spinor" (cs 9), or None to skip ``cs`` and
            write to whatever storage the running loader exposes
        timeout (float): upper bound in seconds for writing one image; 0 disables the bound
    """

    tool_name = "rkdeveloptool"

    loader_image = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    storage = attr.ib(default="emmc",
                      validator=attr.validators.optional(attr.validators.in_(flashtools.STORAGE_CODES)))

    def _checked(self, args: list[str], check, *, long: bool = False, settle: float = 0.0) -> str:
        """Run, let ``check`` raise the tool's own failure, then insist on exit status 0.

        With ``settle``, a missing device is retried for that long: right after ``db`` the
        board re-enumerates, and nothing has been written yet.
        """
        def attempt() -> tuple[int, str]:
            status, output = self.run(args, long=long)
            check(output)
            return status, output

        status, output = retry_for_device(attempt, time.monotonic() + settle)
        if status != 0:
            raise flashtools.ToolFailed(f"rkdeveloptool {args[0]} reported success but exited with status {status}",
                                        output=output)
        return output

    def loader_device(self) -> flashtools.RockusbDevice:
        """The board's rockusb device as ``ld`` lists it, checked to be the one RK3576 at our port."""
        _, output = self.run(flashtools.ld_args())
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
        return self.wait_for_loader(timeout).mode

    @Driver.check_active
    @step(result=True)
    def version(self) -> str:
        """The rkdeveloptool version, e.g. "1.32" (``cs`` needs 1.32)."""
        _, output = self.run(flashtools.version_args())
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
        device = self.loader_device()
        settle = 0.0
        if device.mode == "Maskrom":
            self._download_loader()
            settle = SETTLE_AFTER_DB
        if self.storage is not None:
            self._checked(flashtools.cs_args(self.storage), lambda out: flashtools.check_cs(out, self.storage),
                          settle=settle)
            settle = 0.0
        # before the write: still the only rockusb device of this host, and still at our port (right
        # after db the board re-enumerates, so it may take up to ``settle`` to be seen again)
        retry_for_device(self.loader_device, time.monotonic() + settle)
        self._checked(flashtools.wl_args(image.get_remote_path()), flashtools.check_wl, long=True)

    @Driver.check_active
    @step()
    def reset(self) -> None:
        self._checked(flashtools.rd_args(), flashtools.check_rd)
