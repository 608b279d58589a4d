"""Where a console shows a board starting over: the first banner of a (re)boot.

A Rockchip board prints, from power-on: the DDR init blob's banner (``DDR Version V1.08
20220617``, ``DDR V1.12 52218f4949 cym 23/07/06-19:46:50``, on RK3576 ``DDR 2f85f4b2d4 cym
24/11/07-19:07:28,fwver: v1.09``), SPL (``U-Boot SPL board init``, ``U-Boot SPL 2017.09-...``),
U-Boot proper (``U-Boot 2017.09 (Jan 10 2022 - 01:38:43 +0000)``) and the kernel
(``Booting Linux on physical CPU 0x0``). Seen while a test runs, any of them means the board
rebooted under it. The banners are taken from public RK3288/RK3399/RK3588/RK3576 captures.
"""

from __future__ import annotations

import re

import attr

_STAGES = (
    ("ddr", re.compile(r"\bDDR (?:Version V?\d+\.\d+|V\d+\.\d+ |[0-9a-f]{8,} \w+ \d\d/\d\d/\d\d)")),
    ("spl", re.compile(r"\bU-Boot SPL (?:board init|\d{4}\.\d\d)")),
    ("uboot", re.compile(r"\bU-Boot \d{4}\.\d\d")),
    ("kernel", re.compile(r"Booting Linux on physical CPU")),
)


@attr.s(frozen=True)
class BootStart:
    stage = attr.ib()  # "ddr", "spl", "uboot" or "kernel": the earliest stage the console shows
    line = attr.ib()  # the line as printed


def boot_start(text: str) -> BootStart | None:
    """The first line of ``text`` that shows a boot beginning, or None."""
    for line in text.replace("\r", "\n").split("\n"):
        for stage, pattern in _STAGES:
            if pattern.search(line):
                return BootStart(stage=stage, line=line.strip())
    return None
