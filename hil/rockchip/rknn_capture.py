"""What ``rknn_benchmark`` (``hil.rockchip.rknn_benchmark``) and the rknn_model_zoo C demos
(``hil.rockchip.zoo_demo``) have in common, read once for both.

Both are librknnrt programs built from the same rknpu2 example code, so their captures share
lines: the version line, ``model input num: ...`` and ``dump_tensor_attr()``'s tensor lines,
librknnrt's own ``I/W/E RKNN:`` and ``RKNN Runtime/Driver Information`` lines, and the shell's
words for a program that died or never started. A capture of either may hold several runs. Each
parser subclasses ``RunReader`` with its own lines, stages and end; the sources of every line are
in the two parsers' docstrings.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator

from hil.rockchip.rkllm_log import iter_lines, split_marker
from hil.rockchip.text import capture_name

# A version as kept: the number and its suffix, without the build in brackets that may follow
# (``2.1.0 (967d001cc8@...)`` -> ``2.1.0``).
VERSION_NUMBER = r"(\d[\w.+-]*)"
# ``rknn_api/rknnrt version: X (build), driver version: Y`` (rknn_benchmark) or ``sdk version: X
# driver version: Y`` (the older rknpu2 demos)
VERSION = re.compile(
    rf"(?:rknn_api/rknnrt|sdk) version: {VERSION_NUMBER}(?: \([^)]*\))?,? driver version: {VERSION_NUMBER}")
IO_NUM = re.compile(r"model input num: (\d+), output num: (\d+)")
# dump_tensor_attr(): index, name, n_dims, dims, ..., fmt, type
TENSOR = re.compile(
    r"index=(\d+), name=(.*?), n_dims=(\d+), dims=\[([^\]]*)\].*?\bfmt=(\w+), type=(\w+)")
# librknnrt's own version lines (printed with RKNN_LOG_LEVEL, by the Lite2 API, and before init
# failures); ":" in old runtimes, "," in new ones.
_RT_INFO = re.compile(rf"RKNN Runtime Information[,:] librknnrt version: {VERSION_NUMBER}")
_DRV_INFO = re.compile(rf"RKNN Driver Information[,:] version: {VERSION_NUMBER}")
_DIM = re.compile(r"-?\d+")


def shell_failures(program: str) -> str:
    """A regex alternation of the shell's words for how a process died, or why ``program`` (a
    regex of its name) did not start: to end a parser's own failure alternation with."""
    return (r"Segmentation fault.*|段错误.*|\bKilled\b.*|\bAborted\b.*|Bus error.*|Illegal instruction.*"
            r"|error while loading shared libraries: .*"
            rf"|{program}: (?:No such file or directory|Permission denied|not found)")


def command(program: str) -> re.Pattern:
    """An echoed command line that starts ``program`` (a regex of its name) with an argument; a
    shell prompt may precede it."""
    return re.compile(rf"(?:^|\s)\S*{program}\s+\S")


def tensor(m: re.Match) -> dict:
    """``{"name", "dims", "type"}`` of a ``TENSOR`` match. Only the first ``n_dims`` dims are kept
    (the demos print four whatever ``n_dims`` is); an entry that is no whole number is skipped."""
    dims = [int(d) for d in m[4].split(",") if _DIM.fullmatch(d.strip())]
    return {"name": m[2], "dims": dims[:int(m[3])], "type": m[6]}


class RunReader:
    """One run of a tool being read, line by line. A subclass names its ``KEYS`` (the dict it
    gives; ``errors``, ``runtime_version``, ``driver_version``, ``complete`` and ``cut_short``
    among them), its ``STAGES`` in order and its ``FAILURES``, and reads its own lines in
    ``_tool_line``; ``feed`` takes librknnrt's lines out first."""

    KEYS: tuple[str, ...] = ()
    STAGES: tuple[str, ...] = ()
    FAILURES: re.Pattern

    def __init__(self) -> None:
        self.out: dict = dict.fromkeys(self.KEYS)
        self.out["errors"] = []
        self.fatal: str | None = None
        self.stage = -1
        self.log_runtime: str | None = None
        self.log_driver: str | None = None
        self.recognized = False

    def _at(self, stage: str) -> None:
        self.stage = max(self.stage, self.STAGES.index(stage))
        self.recognized = True

    def reached(self) -> str | None:
        """The last stage the run got to, or None."""
        return self.STAGES[self.stage] if self.stage >= 0 else None

    def feed(self, line: str) -> None:
        before, level, source, body = split_marker(line)
        if source == "RKNN":
            self.recognized = True
            if level == "E":
                self.out["errors"].append(line[len(before):])
            self._runtime_info(body)
            if before.strip():
                self._tool_line(before)
            return
        self._runtime_info(line)
        self._tool_line(line)

    def _runtime_info(self, text: str) -> None:
        if self.log_runtime is None and (m := _RT_INFO.search(text)):
            self.log_runtime = m[1]
            self.recognized = True
        if self.log_driver is None and (m := _DRV_INFO.search(text)):
            self.log_driver = m[1]
            self.recognized = True

    def _failure(self, line: str) -> bool:
        """Whether ``line`` is one of ``FAILURES``; if so it is kept in ``errors`` and the first
        one is the run's ``fatal``."""
        m = self.FAILURES.search(line)
        if m is None:
            return False
        self.out["errors"].append(line[m.start():].strip())
        self.fatal = self.fatal or m[0]
        self.recognized = True
        return True

    def _versions(self, m: re.Match) -> None:
        """The versions of a ``VERSION`` match, unless the run has them already."""
        if self.out["runtime_version"] is None:
            self.out["runtime_version"], self.out["driver_version"] = m[1], m[2]

    def _tool_line(self, line: str) -> None:
        raise NotImplementedError

    def starts_next(self, line: str) -> bool:
        """Whether ``line`` can only be the start of another run."""
        raise NotImplementedError

    def _ended(self) -> bool:
        """Whether the run got to its end (failure lines aside)."""
        raise NotImplementedError

    def _where_it_ends(self) -> str:
        raise NotImplementedError

    def finish(self) -> dict:
        """The run's dict of ``KEYS``. The versions librknnrt logged stand in for those the tool
        did not print; ``cut_short`` says where an incomplete run without a failure line ends."""
        out = self.out
        if out["runtime_version"] is None:
            out["runtime_version"] = self.log_runtime
        if out["driver_version"] is None:
            out["driver_version"] = self.log_driver
        out["complete"] = self.fatal is None and self._ended()
        out["cut_short"] = None if out["complete"] or self.fatal else self._where_it_ends()
        return out

    @classmethod
    def split(cls, lines: Iterable[str]) -> Iterator[RunReader]:
        """The runs in a capture's clean lines, split where ``starts_next`` says."""
        run = cls()
        for line in lines:
            if run.starts_next(line):
                yield run
                run = cls()
            run.feed(line)
        yield run

    @classmethod
    def read(cls, lines: Iterable[str]) -> tuple[list[dict], bool]:
        """``(runs, whether any line was recognised)``: the runs with a recognised line (or the
        one empty run), finished."""
        found = list(cls.split(lines))
        recognized = any(r.recognized for r in found)
        kept = [r for r in found if r.recognized] or found[:1]
        return [r.finish() for r in kept], recognized


def print_first_run(path: str, reader: type[RunReader], unrecognized: str, several: str) -> int:
    """What ``hil parse`` does with one of these captures: the first run in the file at ``path``
    (``-`` = stdin) as one JSON object of ``reader.KEYS``, and 0; 2 when the file cannot be read.
    On stderr, ``warning: FILE {unrecognized}`` when no line was recognised, else ``warning: FILE
    holds N {several}`` when there were N > 1 runs."""
    name = capture_name(path)
    try:
        if path == "-":
            found, recognized = reader.read(iter_lines(sys.stdin.buffer))
        else:
            with open(path, "rb") as f:
                found, recognized = reader.read(iter_lines(f))
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    if not recognized:
        print(f"warning: {name} {unrecognized}", file=sys.stderr)
    elif len(found) > 1:
        print(f"warning: {name} holds {len(found)} {several}", file=sys.stderr)
    print(json.dumps({key: found[0][key] for key in reader.KEYS}, indent=2))
    return 0
