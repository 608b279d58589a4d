"""The Rockchip SoC surface inside the guest (rknpu, devfreq, cpufreq, thermal, device tree)."""

from __future__ import annotations

from hil.twin.cpio import CpioWriter

# Extra kernel modules (paths below /lib/modules/<kver>/) loaded after the base set, in order.
KERNEL_MODULES: list[str] = []


def add_files(cpio: CpioWriter, manifest: dict) -> None:
    """Add the surface's guest files for one image."""
