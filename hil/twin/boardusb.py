"""A twin board as the Rockusb device the real rkdeveloptool sees (``hil.twin.rockusb``).

In Maskrom (the maskrom button at power-on) or Loader mode (``reboot loader``) the board is
on the bus as 2207:350e at its own USB location, bus 3 port N for board N (LocationID
``30N``); ``db`` checks the loader is an RK3576 one; ``rl``/``wl`` go to the board's raw eMMC;
``rd`` boots what LBA 0 holds, or drops back to the BootROM with ``rd 3``.
"""

from __future__ import annotations

import attr

from hil.twin.rockusb import RESET_TO_MASKROM, LoaderRefused, check_loader

USB_BUS = 3
CHIP = "RK3576"


def location(index: int) -> tuple[int, tuple[int, ...]]:
    """Board N's USB location: bus 3, hub port N (the sysfs name ``3-N``)."""
    return USB_BUS, (index,)


@attr.s(eq=False)
class BoardUSB:
    """The Rockusb side of a ``hil.twin.board.VirtualBoard``."""

    board = attr.ib()

    def mode(self) -> str | None:
        return {"maskrom": "Maskrom", "loader": "Loader"}.get(self.board.mode)

    def location(self) -> tuple[int, tuple[int, ...]]:
        return location(self.board.index)

    def download_boot(self, entry_471: bytes, entry_472: bytes) -> None:
        if self.board.mode != "maskrom":
            raise LoaderRefused(f"the BootROM is not running (board {self.board.index} is {self.board.mode})")
        check_loader(CHIP, entry_471, entry_472)
        self.board.download_boot()

    def loader_ready(self) -> bool:
        return self.board.mode == "loader" or self.board.loader_ready

    def capacity_sectors(self) -> int:
        return self.board.disk.capacity_sectors()

    def read(self, lba: int, count: int) -> bytes:
        return self.board.disk.read(lba, count)

    def write(self, lba: int, data: bytes) -> None:
        self.board.disk.write(lba, data)
        self.board.rockusb_sectors_written += -(-len(data) // 512)

    def erase(self, lba: int, count: int) -> None:
        self.board.disk.erase(lba, count)

    def reset(self, subcode: int = 0) -> None:
        if subcode == RESET_TO_MASKROM:
            self.board.enter_maskrom()
        else:
            self.board.boot_from_disk()
