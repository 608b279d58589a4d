"""Flash a real RK3576 with Rockchip's closed-source upgrade_tool, behind FlashProtocol.

``upgrade_tool uf update.img`` takes a packed Rockchip firmware (RKFW, as built by the vendor
SDK) and does the loader download, the storage write and the reset by itself, in Maskrom or
Loader mode. What it writes is what the package lists, so ``wipe_userdata`` cannot change it.

Example environment entry, for a board whose loader port is exported (a local one takes an
``RKUSBLoader`` resource, as in rkdeveloptool's example)::

    tools:
      upgrade_tool: /opt/rockchip/upgrade_tool   # the path on the exporter, where it runs
    targets:
      main:
        resources:
          RemotePlace: {name: rk3576-1}   # its place holds the board's NetworkRKUSBLoader
        drivers:
          UpgradeToolDriver: {}

As with rkdeveloptool, the command-line mode has no device selection here, so one board per
host in loader mode at a time is assumed and ``ld`` must list exactly one 2207:350e device.
Unlike rkdeveloptool's, upgrade_tool's LocationID cannot be matched to a USB port: it is not
``bus << 8 | port`` (values such as 12, 13 and 143 are printed; since v1.45 it "supports 7
levels" of hubs, in an undocumented encoding). So the check before ``uf`` is: the tool's own
count and its device lines both say exactly one device, and this target's loader resource
(which only matches a rockusb device at this board's port) is present at that moment; then
the one device the tool sees is this board.
"""

from __future__ import annotations

import attr
from labgrid.driver import Driver
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.util.managedfile import ManagedFile

from hil.lab.flashtool import FlashToolDriver
from hil.rockchip import flashtools

def listed_count(output: str) -> int | None:
    """The count in upgrade_tool's ``ld`` header, ``List of rockusb connected(N)``; None without one."""
    return flashtools.read_output(output, "ld").listed


def check_one_device(output: str, devices: list[flashtools.RockusbDevice]) -> None:
    """Refuse when upgrade_tool counts more devices than one, even if a line was not understood.

    ``uf`` has no device option here and would take whichever device it finds first.
    """
    count = listed_count(output)
    if count is not None and count > 1 and count != len(devices):
        raise flashtools.TooManyDevices(
            f"upgrade_tool lists {count} rockusb devices ({len(devices)} of them readable) and cannot be told "
            "which one to flash: keep only one board per host in loader mode at a time (serialise flashing "
            "per exporter) or move boards to separate hosts", output=output)


@target_factory.reg_driver
@attr.s(eq=False)
class UpgradeToolDriver(FlashToolDriver):
    """Flashes an update.img with ``upgrade_tool uf``; ``rd`` only when ``uf`` has not reset the board already.

    Args:
        timeout (float): upper bound in seconds for one ``uf`` run; 0 disables the bound
    """

    tool_name = "upgrade_tool"

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._reset_by_uf = False

    def loader_device(self) -> flashtools.RockusbDevice:
        """The one RK3576 ``ld`` lists, refused unless this target's loader port shows a device now."""
        _, output = self.run(flashtools.ld_args())
        devices = flashtools.parse_ld(output)
        check_one_device(output, devices)
        device = flashtools.select_rk3576(devices, output=output)
        self.loader.poll()
        if not self.loader.avail:
            raise flashtools.WrongDevice(
                f"upgrade_tool sees a rockusb device (LocationID {device.location}, {device.mode}), but this "
                f"target's loader port ({self.loader.display_name}) shows none: another board on this host is in "
                "loader mode and this one is not; it would be flashed instead", output=output)
        return device

    @Driver.check_active
    @step(args=["timeout"], result=True)
    def await_loader(self, timeout: float = 30.0) -> str:
        mode = self.wait_for_loader(timeout).mode
        self._reset_by_uf = False
        return mode

    @Driver.check_active
    @step(args=["filename", "wipe_userdata"])
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        self.logger.info("upgrade_tool uf writes what %s lists; wipe_userdata=%s has no effect on it",
                         filename, wipe_userdata)
        image = ManagedFile(filename, self.loader)
        image.sync_to_resource()
        self.loader_device()  # fail on a missing, foreign or second board before uf starts
        status, output = self.run(flashtools.uf_args(image.get_remote_path()), long=True)
        flashtools.check_uf(output)
        if status != 0:
            raise flashtools.ToolFailed(f"upgrade_tool uf printed 'Upgrade firmware ok.' but exited with status "
                                        f"{status}", output=output)
        self._reset_by_uf = True

    @Driver.check_active
    @step()
    def reset(self) -> None:
        if self._reset_by_uf:
            self.logger.info("uf has reset the board already; no rd")
            self._reset_by_uf = False
            return
        _, output = self.run(flashtools.rd_args())
        flashtools.check_rd(output)
