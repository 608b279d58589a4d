"""A board's boot on its serial console: where a boot begins (``boot_start``), and what a capture
of one or several boots shows (``parse``, ``hil parse boot-log``).

A Rockchip board prints, from power-on, in this order (the stages named in ``STAGES``):

- ``ddr``: the DDR init blob's banner (``DDR Version V1.08 20220617``, ``DDR V1.12 52218f4949 cym
  23/07/06-19:46:50``, on RK3576 ``DDR 2f85f4b2d4 cym 24/11/07-19:07:28,fwver: v1.09``, on RK3328
  ``DDR version 1.17 20210528``), or mainline U-Boot's TPL, which does the DRAM init on RK3328/RK3399
  (``U-Boot TPL 2021.07 (...)``). The first character is often lost as the UART comes up
  (``DR 2f85f4b2d4 cym ...`` in barban-dev/u-boot-radxa-rock-4d), so a blob tag with a date is
  enough.
- ``spl``: the second-stage loader: ``U-Boot SPL board init`` / ``U-Boot SPL 2017.09-...``, the old
  miniloader (``Boot1 Release Time: ...``), and the TF-A (``NOTICE:  BL31: ...``) and OP-TEE
  (``I/TC: OP-TEE version``) it starts.
- ``uboot``: U-Boot proper (``U-Boot 2017.09 (Jan 10 2022 - 01:38:43 +0000)``, ``Hit any key to stop
  autoboot``, the ``=>`` prompt, and its last line ``Starting kernel ...``, which forum software
  turns into ``Starting kernel …``).
- ``kernel``: ``Booting Linux on physical CPU``, ``Linux version ...``, its panic and oops lines, and
  any line with a kernel timestamp (``[    1.234567]``, ``[6.356354]``, ``<6>[   16.920109]`` with the
  level shown; a kernel built without ``CONFIG_PRINTK_TIME`` prints none). A kernel booted
  ``quiet`` shows none of its own lines: ``kernel`` is then missing from a boot that reached
  ``login`` (barban-dev/u-boot-radxa-rock-4d shows none between ``Starting kernel ...`` and the
  login prompt).
- ``init``: user space: the kernel's ``Run /init as init process``, initramfs-tools
  (``Loading, please wait...``, ``Begin: ... ...``), systemd (``systemd[1]:``, ``Welcome to ...!``,
  ``[  OK  ] ...``), sysvinit (``INIT: version``), OpenWrt (``procd:``, ``init: ...``).
- ``login``: a getty prompt (``myd-lr3576 login:``, ``... login: root (automatic login)``), busybox's
  ``Please press Enter to activate this console.``, or a shell prompt (``root@host:~#``,
  ``[root@rk3588:/]#``, Android's ``console:/ $``): the console is the user's.

A new boot begins at a banner (DDR, SPL, U-Boot, ``Booting Linux``) of a stage the current boot
has already passed, or whose banner it has already shown (``U-Boot SPL board init`` and the
``U-Boot SPL 2017.09`` banner after it are one); ``boot_start`` finds the first banner, as the
console watchdog needs it. A line with a banner counts as that banner alone (the ``=> `` left
before ``DDR Version`` in ryan4yin/nixos-rk3588#3). Two exceptions keep a logged-in console from
counting as a reboot: ``Booting Linux`` after ``login`` is ``dmesg`` output (a Rockchip board that
really reboots prints its DDR banner first), and a U-Boot banner right after a ``version``
command is that command's output (labgrid's UBootDriver runs ``version``). Lines before the first
one that shows a stage belong to no boot; a boot ends where the next one begins.

The other facts of a boot: its ``Kernel panic - not syncing`` line; the rknpu driver's probe lines
(``RKNPU fdab0000.npu: ...`` as the driver's ``dev_info`` prints them, and the DRM line ``[drm]
Initialized rknpu 0.9.8 20240828 for 27700000.npu on minor 1``, dated on vendor kernels and not on
mainline 6.18, ophub/fnnas#620; or ``Initialized RKNPU driver: v0.9.8`` when built as a misc device;
rockchip.md §5), the driver version in them, ``Linux version <release>``, and times read from the
kernel timestamps: on the printk clock, which starts with the kernel on mainline and at power-on
on some vendor kernels (an RK3568 5.10 kernel's first line reads ``[    1.397897] Booting Linux``,
ophub/amlogic-s9xxx-openwrt#818).

Console text is cleaned first (``clean_lines``: CRLF, ANSI escapes, lone CRs); colour codes whose
ESC byte was lost on the way (``[[0;32m  OK  [0m]`` in a mailed RK3588 log, dri-devel 2025-12-16)
are removed too.

Sources (real consoles, quoted in selftest/unit/test_rockchip_bootlog.py): RK3576 ROCK 4D
(barban-dev/u-boot-radxa-rock-4d README), OpenWrt's RK3576 bring-up (openwrt/openwrt#20041),
RK3588 ROCK 5B (dri-devel 2025-12-16, panthor; radxa/meta-rockchip#4 for rknpu), RK3588 ROCK 5A
(ryan4yin/nixos-rk3588#3), RK3576 rknpu (airockchip/rknn-toolkit2#534), RK3566 TF-A/OP-TEE/U-Boot
(rockchip-linux/u-boot#94), RK3562 panic (armbian/linux-rockchip#385), RK3328 NanoPi R2S panic and
reboot (coolsnowwolf/lede#7975), RK3399 ROCK Pi 4C U-Boot (forum.radxa.com topic 13396), and the
twin's console as labgrid logs it (U-Boot 2023.01 from Debian, Debian's 6.1 kernel, busybox getty).
"""

from __future__ import annotations

import json
import re
import sys

import attr

from hil.rockchip.text import capture_name, clean_lines, read_capture

STAGES = ("ddr", "spl", "uboot", "kernel", "init", "login")
_ORDER = {stage: n for n, stage in enumerate(STAGES)}
LAST_LINES = 20

# The banners that open a boot, searched anywhere in a line ("=> DDR Version ...", line noise before it).
_STAGES = (
    ("ddr", re.compile(r"\bDDR (?:[Vv]ersion V?\d+\.\d+|V\d+\.\d+ )|\bD?DR [0-9a-f]{8,} \w+ \d\d/\d\d/\d\d"
                       r"|\bU-Boot TPL \d{4}\.\d\d")),
    ("spl", re.compile(r"\bU-Boot SPL (?:board init|\d{4}\.\d\d)")),
    ("uboot", re.compile(r"\bU-Boot \d{4}\.\d\d")),
    ("kernel", re.compile(r"Booting Linux on physical CPU")),
)

# Lines that show a stage without opening a boot: how the line starts (after its kernel timestamp), and
# words anywhere in it; one regex each, a group per stage.
_MARKER_STARTS = (
    ("spl", r"Boot1 Release Time|(?:NOTICE|INFO):\s+BL31: |I/TC: OP-TEE version|Jumping to U-Boot"
            r"|Trying to boot from "),
    ("uboot", r"Starting kernel ?(?:\.\.\.|…)|=>(?:\s|$)|## (?:Booting |Flattened Device Tree blob)"),
    ("kernel", r"Linux version \S|Uncompressing Linux\.\.\.|Internal error: |Unable to handle kernel "),
    ("init", r"systemd\[1\]: |Welcome to .+!$|\[\s*(?:OK|FAILED|DEPEND|TIME)\s*\] |INIT: version|Loading, please wait"
             r"|Begin: .*\.\.\.|procd: |init: "),
    ("login", r"(?:\S+ )?login:(?:\s|$)|\[?[\w.-]+@[\w.-]+[:\s][^\s#$]*\]?[#$](?:\s|$)|console:/ [#$]"),
)
_MARKER_WORDS = (
    ("uboot", r"Hit any key to stop autoboot"),
    ("kernel", r"Kernel panic - not syncing"),
    ("init", r"\bRun \S+ as init process"),
    ("login", r"Please press Enter to activate this console"),
)
_STARTS = re.compile("|".join(f"(?P<{stage}>{pattern})" for stage, pattern in _MARKER_STARTS))
_WORDS = re.compile("|".join(f"(?P<{stage}>{pattern})" for stage, pattern in _MARKER_WORDS))

# Rockchip's SPL says "U-Boot SPL board init" right before its "U-Boot SPL 2017.09-..." banner: a banner that
# opens a boot, but not one whose repetition does.
_SPL_BOARD_INIT = re.compile(r"\bU-Boot SPL board init")
_TIMESTAMP = re.compile(r"^(?:<\d>)?\[\s*(\d+\.\d+)\]\s?")
_LOST_ESC = re.compile(r"\[(?:\d{1,3};)*\d{1,3}m")  # an SGR colour code whose ESC byte was lost
_VERSION_COMMAND = re.compile(r"(?:^|[#>$]\s*)version\s*$")  # "=> version": U-Boot's banner follows
_PANIC = re.compile(r"Kernel panic - not syncing")
_RUN_INIT = re.compile(r"\bRun \S+ as init process")
_LINUX_VERSION = re.compile(r"\bLinux version (\S+)")
_RKNPU = re.compile(r"\bRKNPU [0-9a-f]+\.npu: |\bInitialized rknpu \d|\bInitialized RKNPU driver: v\d")
_RKNPU_VERSION = re.compile(r"\bInitialized (?:rknpu |RKNPU driver: v)(\d+\.\d+\.\d+)")


@attr.s(frozen=True)
class BootStart:
    stage = attr.ib()  # "ddr", "spl", "uboot" or "kernel": the earliest stage the console shows
    line = attr.ib()  # the line as printed


def boot_start(text: str) -> BootStart | None:
    """The first line of ``text`` that shows a boot beginning (a DDR, SPL, U-Boot or kernel banner),
    or None."""
    for line in text.replace("\r", "\n").split("\n"):
        stage = _banner(line)
        if stage is not None:
            return BootStart(stage=stage, line=line.strip())
    return None


def _banner(line: str) -> str | None:
    if "DR " in line or "U-Boot" in line or "Booting Linux" in line:  # every banner holds one of these
        for stage, pattern in _STAGES:
            if pattern.search(line):
                return stage
    return None


def _markers(body: str) -> list[str]:
    return [m.lastgroup for m in (_STARTS.match(body), _WORDS.search(body)) if m is not None]


@attr.s(frozen=True)
class Boot:
    """One boot in a capture: from its first line that shows a stage to the line before the next boot.

    ``stages``: the stages it shows, in boot order; ``first_line``/``last_line``: 1-based lines of the
    cleaned capture; ``panic``: its first ``Kernel panic - not syncing`` line; ``rknpu``: the rknpu
    probe lines (each once) or None; ``rknpu_driver``: the driver version they name; ``kernel_version``:
    the release in ``Linux version``; ``times_s``: seconds on the kernel's clock, each only when
    printed: ``kernel`` (its first timestamp), ``init`` (``Run ... as init process``), ``panic`` and
    ``last`` (its last timestamp); ``lines``: its cleaned lines."""

    stages = attr.ib()
    first_line = attr.ib()
    last_line = attr.ib()
    panic = attr.ib(default=None)
    rknpu = attr.ib(default=None)
    rknpu_driver = attr.ib(default=None)
    kernel_version = attr.ib(default=None)
    times_s = attr.ib(factory=dict)
    lines = attr.ib(factory=list, repr=False)

    @property
    def last_stage(self) -> str:
        """The furthest stage this boot reached: what a failed boot is classified by."""
        return self.stages[-1]

    def last_lines(self, n: int = LAST_LINES) -> list[str]:
        """Its last ``n`` non-blank lines, cleaned."""
        return _tail(self.lines, n)

    def to_dict(self) -> dict:
        return {"stages": list(self.stages), "last_stage": self.last_stage, "panic": self.panic,
                "rknpu": self.rknpu, "rknpu_driver": self.rknpu_driver, "kernel_version": self.kernel_version,
                "times_s": dict(self.times_s), "lines": [self.first_line, self.last_line]}


@attr.s(frozen=True)
class BootLog:
    """What ``parse`` read: the boots in a capture, earliest first, and its cleaned lines."""

    boots = attr.ib()
    lines = attr.ib(repr=False)

    @property
    def last(self) -> Boot | None:
        """The latest boot: the board's state when the capture ends; None when there is no boot."""
        return self.boots[-1] if self.boots else None

    def last_lines(self, n: int = LAST_LINES) -> list[str]:
        """The capture's last ``n`` non-blank lines, cleaned."""
        return _tail(self.lines, n)

    def to_dict(self) -> dict:
        """The JSON of ``hil parse boot-log``: the latest boot's facts at the top, the number of
        boots, every boot in ``per_boot`` and the capture's last lines."""
        last = self.last.to_dict() if self.last else {
            "stages": [], "last_stage": None, "panic": None, "rknpu": None, "rknpu_driver": None,
            "kernel_version": None, "times_s": {}}
        out = {"boots": len(self.boots)}
        out.update((k, v) for k, v in last.items() if k != "lines")
        out["per_boot"] = [b.to_dict() for b in self.boots]
        out["last_lines"] = self.last_lines()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _tail(lines: list[str], n: int) -> list[str]:
    return [line for line in lines if line.strip()][-n:] if n > 0 else []


class _Open:
    """The boot being read."""

    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.reached: set[str] = set()
        self.banners: set[str] = set()  # stages whose banner this boot showed
        self.lines: list[str] = []
        self.panic = self.driver = self.kernel_version = None
        self.rknpu: list[str] = []
        self.times: dict[str, float] = {}

    @property
    def furthest(self) -> int:
        return max((_ORDER[s] for s in self.reached), default=-1)

    def begun_anew_by(self, banner: str) -> bool:
        """Whether this banner opens a new boot: its stage is passed, or its banner already shown."""
        order = _ORDER[banner]
        if banner == "kernel" and "login" in self.reached:
            return False  # "Booting Linux" on a console that is logged in: dmesg output
        return order < self.furthest or any(_ORDER[b] >= order for b in self.banners)

    def read(self, line: str, stamp: float | None) -> None:
        self.lines.append(line)
        if stamp is not None:
            self.times.setdefault("kernel", stamp)
            self.times["last"] = stamp
        if self.panic is None and "Kernel panic" in line and _PANIC.search(line):
            self.panic = line.strip()
            if stamp is not None:
                self.times["panic"] = stamp
        if stamp is not None and "init" not in self.times and " as init process" in line and _RUN_INIT.search(line):
            self.times["init"] = stamp
        if self.kernel_version is None and "Linux version" in line and (m := _LINUX_VERSION.search(line)):
            self.kernel_version = m[1]
        if ("RKNPU" in line or "rknpu" in line) and _RKNPU.search(line):
            if line.strip() not in self.rknpu:
                self.rknpu.append(line.strip())
            if self.driver is None and (m := _RKNPU_VERSION.search(line)):
                self.driver = m[1]

    def close(self, last_line: int) -> Boot:
        times = {k: self.times[k] for k in ("kernel", "init", "panic", "last") if k in self.times}
        return Boot(stages=[s for s in STAGES if s in self.reached], first_line=self.first_line, last_line=last_line,
                    panic=self.panic, rknpu=self.rknpu or None, rknpu_driver=self.driver,
                    kernel_version=self.kernel_version, times_s=times, lines=self.lines)


def parse(text: str | bytes) -> BootLog:
    """The boots in a console capture (bytes are decoded as UTF-8, bad bytes replaced), earliest
    first. Lines before the first one that shows a stage belong to no boot."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = _LOST_ESC.sub("", "\n".join(clean_lines(text))).split("\n")
    boots: list[Boot] = []
    current: _Open | None = None
    previous = ""  # the last non-blank line
    for n, line in enumerate(lines, 1):
        m = _TIMESTAMP.match(line)
        stamp, body = (float(m[1]), line[m.end():]) if m else (None, line)
        banner = _banner(line)
        if banner == "uboot" and _VERSION_COMMAND.search(previous):
            banner = None  # the banner that U-Boot's "version" command prints
        if banner is not None:
            if current is not None and current.begun_anew_by(banner):
                boots.append(current.close(n - 1))
                current = None
            current = current or _Open(n)
            if not _SPL_BOARD_INIT.search(line):
                current.banners.add(banner)
            current.reached.add(banner)
        else:
            seen = _markers(body) + (["kernel"] if stamp is not None else [])
            if seen and current is None:
                current = _Open(n)
            if current is not None:
                current.reached.update(seen)
        if current is not None:
            current.read(line, stamp)
        if line.strip():
            previous = line
    if current is not None:
        boots.append(current.close(len(lines)))
    return BootLog(boots=boots, lines=lines)


def main(path: str) -> int:
    """``hil parse boot-log FILE``: print ``parse`` of the capture as JSON (``-`` = stdin); a warning
    on stderr when nothing in it is a boot log."""
    data = read_capture(path)
    if data is None:
        return 2
    log = parse(data)
    if not log.boots:
        name = capture_name(path)
        print(f"warning: {name} holds no boot log (no DDR, SPL or U-Boot banner, kernel line, init line or "
              f"login prompt); every value in the JSON is empty", file=sys.stderr)
    print(log.to_json())
    return 0
