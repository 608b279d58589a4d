"""What the RKNPU driver and the kernel tell about the NPU: debugfs/procfs/sysfs files and the
console (rockchip.md §5, §10). Each parser takes the text of one file as read from the board.
"""

from __future__ import annotations

import re

import attr

from hil.rockchip.text import clean_lines

_DRIVER_FILE = re.compile(r"^(?:RKNPU driver: v)?(\d+\.\d+\.\d+)$")
_LOAD_CORE = re.compile(r"Core(\d+):\s*(\d*)\s*%")
_LOAD_SINGLE = re.compile(r"^NPU load:\s*(\d*)\s*%")


def parse_driver_version(text: str) -> str:
    """``/sys/kernel/debug/rknpu/version`` (``RKNPU driver: v0.9.8``) or
    ``/sys/module/rknpu/version`` (``0.9.6``) -> ``"0.9.8"``."""
    value = text.strip()
    m = _DRIVER_FILE.match(value)
    if m is None:
        raise ValueError(f"not an RKNPU driver version: {value!r}")
    return m[1]


def parse_load(text: str) -> dict[str, int]:
    """``load`` (debugfs or /proc/rknpu): ``NPU load:  Core0:  0%, Core1:  0%,`` ->
    ``{"Core0": 0, "Core1": 0}``; a single-core SoC's ``NPU load:  5%`` -> ``{"Core0": 5}``.
    A blank figure (``Core0:   %``) is 0: the driver prints zero with ``%2.d``."""
    line = text.strip()
    if not line.startswith("NPU load:"):
        raise ValueError(f"not an RKNPU load line: {line!r}")
    cores = {f"Core{n}": int(v or 0) for n, v in _LOAD_CORE.findall(line)}
    if cores:
        return cores
    m = _LOAD_SINGLE.match(line)
    if m is None:
        raise ValueError(f"no load figure in {line!r}")
    return {"Core0": int(m[1] or 0)}


def parse_frequencies(text: str) -> list[int]:
    """``available_frequencies`` / ``scaling_available_frequencies``: space-separated, in the
    kernel's order (Hz for devfreq, kHz for cpufreq)."""
    return [int(f) for f in text.split()]


def parse_millidegrees(text: str) -> float:
    """``/sys/class/thermal/thermal_zoneN/temp`` (millidegree Celsius) -> degrees Celsius."""
    return int(text.strip()) / 1000


@attr.s(frozen=True)
class Finding:
    """A console line that says the kernel or the NPU driver is in trouble.

    ``kind``: ``panic``, ``oops``, ``bug``, ``call_trace``, ``rknpu_error`` or ``oom_kill``;
    ``line``: the line as printed (timestamp kept); ``lineno``: 1-based."""

    kind = attr.ib()
    line = attr.ib()
    lineno = attr.ib()


# First match wins, so a line is reported once, as its most serious kind.
_KINDS = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("oops", re.compile(r"Internal error: Oops|Unable to handle kernel")),
    ("bug", re.compile(r"\bBUG: ")),
    ("call_trace", re.compile(r"\bCall trace:", re.I)),
    ("rknpu_error", re.compile(r"(?=.*RKNPU)(?=.*\b(?:errors?|fail(?:ed|ure)?)\b)", re.I)),
    ("rknpu_error", re.compile(r"(?=.*\brknpu)(?=.*\bprobe)(?=.*\bfail)", re.I)),
    ("oom_kill", re.compile(r"Out of memory: Killed process|invoked oom-killer")),
)


def scan_console(text: str) -> list[Finding]:
    """Findings in a dmesg or serial console capture, in order."""
    found = []
    for n, line in enumerate(clean_lines(text), 1):
        for kind, pattern in _KINDS:
            if pattern.search(line):
                found.append(Finding(kind, line, n))
                break
    return found
