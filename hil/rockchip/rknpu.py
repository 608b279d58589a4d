"""What the RKNPU driver and the kernel tell about the NPU: debugfs/procfs/sysfs files and the
console (rockchip.md §5, §10). Each ``parse_*`` takes the text of one file as read from the board;
``parse_capture`` takes a pasted terminal capture of several (``hil parse npu``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping

import attr

from hil.rockchip.text import capture_name, clean_lines, read_capture

_DRIVER_FILE = re.compile(r"^(?:RKNPU driver: v)?(\d+\.\d+\.\d+)$")
_LOAD_CORE = re.compile(r"Core(\d+):\s*(\d*)\s*%")
_LOAD_SINGLE = re.compile(r"^NPU load:\s*(\d*)\s*%")
SINGLE_CORE = "NPU"  # the one core of a single-core SoC (RV1126B: ``NPU load:  0%``), which the driver does not number
# The driver's load is busy time over a 1 s window: more is a miscount (rknpu2#102 reads 429496 %,
# rknn-toolkit2#293 20000 %), never a load.
LOAD_MAX_PCT = 100


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
    ``{"Core0": 0, "Core1": 0}``; a single-core SoC's ``NPU load:  5%`` -> ``{"NPU": 5}``.
    A blank figure (``Core0:   %``) is 0: the driver prints zero with ``%2.d``. A figure above
    100 is kept as printed: ``load_anomalies`` tells it, so that it is never taken for a load."""
    line = text.strip()
    if not line.startswith("NPU load:"):
        raise ValueError(f"not an RKNPU load line: {line!r}")
    cores = {f"Core{n}": int(v or 0) for n, v in _LOAD_CORE.findall(line)}
    if cores:
        return cores
    m = _LOAD_SINGLE.match(line)
    if m is None:
        raise ValueError(f"no load figure in {line!r}")
    return {SINGLE_CORE: int(m[1] or 0)}


def load_anomalies(load: Mapping[str, int]) -> list[str]:
    """One text per core of a ``parse_load`` result that reads above 100 %: a driver miscount."""
    return [f"{core} at {pct} % (above {LOAD_MAX_PCT} %: a driver miscount, not a load)"
            for core, pct in load.items() if pct > LOAD_MAX_PCT]


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

    ``kind``: ``panic``, ``oops``, ``bug``, ``call_trace``, ``npu_reset``, ``rknpu_error`` or ``oom_kill``;
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
    # the driver's recovery from a hung NPU (rknpu_job.c / rknpu_reset.c of the vendor driver 0.9.x)
    ("npu_reset", re.compile(r"RKNPU: (?:soft reset\b|job timeout\b|job abort\b)")),
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


# --- a pasted capture of the driver's files (hil parse npu) -----------------------------------

CAPTURE_FILES = ("version", "load", "freq")  # the files parse_capture reads; the driver's others are skipped
_CAT = re.compile(r"\bcat\s+([^|;&<>`]*)")  # a shell command reading files: its arguments
_PROMPT = re.compile(r"^(?:\(\S+\)\s*)?(?:[\w.-]+@[\w.-]+)?(?::[^\s#$]*)?[#$](?:\s|$)")  # (venv) user@host:~$ / # / :~$
_BARE_NUMBER = re.compile(r"^\d+$")
_BARE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _file_read(path: str) -> str:
    """What a ``cat`` argument is: ``version``, ``load`` or ``freq`` of the rknpu driver
    (debugfs, procfs, /sys/module/rknpu), or ``other`` (another driver file, devfreq, ...)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name in CAPTURE_FILES and ("rknpu" in path or "/" not in path):
        return name
    return "other"


def _reads(line: str) -> list[str] | None:
    """The files a command line reads, in order (``[]`` for a prompt that reads none), or
    None when the line is no command but output. ``watch`` pads its header's command with
    spaces: what follows them is no argument."""
    files = [_file_read(arg) for m in _CAT.finditer(line) for arg in re.split(r"\s{2,}", m[1].strip())[0].split()
             if not arg.startswith("-")]
    if files:
        return files
    return [] if _PROMPT.match(line) else None


def parse_capture(text: str) -> dict:
    """The facts of a capture of the rknpu files ``version``, ``load`` and ``freq``: a terminal
    paste with shell prompts and ``cat`` commands (``sudo``, ``watch``, several files in one
    command), or their bare lines; CRLF and ANSI codes are cleaned first.

    Returns ``{"driver_version": "0.9.8", "load": {core: percent}, "freq_hz": int,
    "anomalies": [str]}``, a value None when the capture does not hold it, the last reading
    when it holds several. ``NPU load:`` and ``RKNPU driver: v`` lines name themselves; any
    other line is taken for the file its command read, and with no command before it a bare
    number is the freq file and a bare ``0.9.6`` the version. ``anomalies``: a core above
    100 % (kept in ``load`` as printed), and a line of one of these files that does not parse
    (an error of ``cat`` included). Output of other commands and files is skipped.
    """
    out: dict = {"driver_version": None, "load": None, "freq_hz": None, "anomalies": []}
    reading: list[str] | None = None  # the files the last command reads, the current one first; None: no command yet

    for line in clean_lines(text):
        stripped = line.strip().strip("`").strip()
        if not stripped:
            continue
        files = _reads(stripped)
        if files is not None:
            reading = files
            continue
        kind = None if reading is None else (reading[0] if reading else "other")
        if reading and len(reading) > 1:
            reading.pop(0)  # each of these files is one line: the next line is the next file's
        load_at, driver_at = stripped.find("NPU load:"), stripped.find("RKNPU driver:")
        if load_at >= 0 or driver_at >= 0:
            what = "load" if load_at >= 0 else "version"
        elif kind is None:  # no command yet: a bare line of one of the files
            what = "version" if _BARE_VERSION.match(stripped) else "freq" if _BARE_NUMBER.match(stripped) else None
        else:
            what = None if kind == "other" else kind
        try:
            if what == "load":
                out["load"] = parse_load(stripped[max(load_at, 0):])
                out["anomalies"] += [f"load: {a}" for a in load_anomalies(out["load"])]
            elif what == "version":
                out["driver_version"] = parse_driver_version(stripped[max(driver_at, 0):])
            elif what == "freq":
                if not _BARE_NUMBER.match(stripped):
                    raise ValueError(f"not a clock rate in Hz: {stripped!r}")
                out["freq_hz"] = int(stripped)
        except ValueError as e:
            out["anomalies"].append(f"{what}: {e}")
    return out


def main(path: str) -> int:
    """``hil parse npu FILE``: print ``parse_capture`` of the file as JSON (``-`` = stdin); a
    warning on stderr when nothing in it is an rknpu file."""
    data = read_capture(path)
    if data is None:
        return 2
    out = parse_capture(data.decode("utf-8", errors="replace"))
    if not out["anomalies"] and all(out[k] is None for k in ("driver_version", "load", "freq_hz")):
        name = capture_name(path)
        print(f"warning: {name} holds no rknpu version, load or freq reading (no 'RKNPU driver: v', 'NPU load:' "
              f"or 'cat .../rknpu/freq' line); every value in the JSON is empty", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0
