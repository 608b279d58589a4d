"""Memory and platform stress tools: Google's ``stressapptest`` and pyropus ``memtester`` (4.x,
and the Rockchip build that the RK3576 SDKs ship), read from a serial or SSH capture.

An endurance run keeps the console of a board under stress for hours; these parsers say whether
each tool passed, how far it got, and what it printed when it found a fault, so that a soak or
power-cycle statistic counts tool verdicts and not grep hits (a naive ``grep -i error`` matches
stressapptest's ``with 0 hardware incidents, 0 errors`` on every clean run).

Sources, and what each one says
-------------------------------
- stressapptest's source, ``stressapptest/stressapptest@099e350:src/sat.cc``, ``src/main.cc``,
  ``src/logger.cc``, ``src/worker.cc@0f05a3e`` and ``src/os.cc``. **[src]**

  - Every line goes through ``logprintf``. ``Logger::VLogF`` prefixes ``%Y/%m/%d-%H:%M:%S(%Z) ``
    in some releases (``-W`` runs of 1.0.9 and 1.0.11 print it; the NuttX port prints ``()``
    for an empty zone); the 1.0.6 Ubuntu package and the current source print none.
  - ``Sat::Run()``: ``Log: Seconds remaining: %d`` every ``--printsec`` seconds, ``Log: User
    exiting early (%d seconds remaining)`` on SIGINT/SIGTERM, ``Log: Exiting early (%d seconds
    remaining) due to excessive failures (%lld)`` past ``--max_errors``; then ``Stats: Found %lld
    hardware incidents``.
  - ``AnalysisAllStats()``: ``Stats: Completed: %.2fM in %.2fs %.2fMB/s, with %d hardware
    incidents, %d errors`` (the second count is ``statuscount_``, procedural errors); then
    ``Stats: Memory Copy|File Copy|Net Copy|Data Check|Invert Data|Disk: %.2fM at %.2fMB/s``.
  - ``PrintResults()``, reached on every path of ``main()`` (also after ``Initialize()`` fails):
    a blank line, ``Status: FAIL - test encountered procedural errors`` (``statuscount_``), else
    ``Status: FAIL - test discovered HW problems`` (``errorcount_``), else ``Status: PASS -
    please verify no corrected errors``, and a blank line. ``Process Error: Fatal issue
    encountered. See above logs for details.`` may follow.
  - Fault lines: ``Report Error: %s : %s : %d : %ds`` (``OsLayer::ErrorReport``), ``%s: miscompare
    on CPU %d(0x%s) at %p(0x%llx:%s): read:0x%016llx, reread:0x%016llx expected:0x%016llx`` with
    ``%s`` = ``Hardware Error``, ``Page Error`` (more than 128 miscompares in a block) or ``Block
    Error``; ``Block Error: (%p) pattern %s instead of %s, ...``; procedural ``Process Error: ...``
    and ``Fatal Error: cannot open file %s for logging``.
- Real stressapptest captures, quoted in the tests: ``osism/documentation:source/test/hardware.rst``
  (1.0.6 Ubuntu package, no timestamps, PASS); microsoft/VirtualClient#40 (a timestamped PASS run);
  stressapptest/stressapptest#127 (aarch64 ``stressapptest_arm`` 1.0.9 with ``-W``), #117
  (``Process Error`` and ``FAIL - test encountered procedural errors`` after a full run), #1 and
  #2 (``Sat::Initialize() failed``, FAIL without a ``Completed`` line), #71 (aarch64 miscompares,
  ``Report Error`` / ``Hardware Error`` pairs), #53 (``Page Error``, a FAIL line); the
  fedevel.com "ARM DDR3 Memory testing" page (i.MX6 miscompares between ``Seconds remaining``
  lines). **[src]** In #56 the reporter saw ``Hardware Error: miscompare`` lines and ``Status:
  PASS``, so only the ``Status:`` line gives the verdict here.
- Debian's own builds (bookworm ``stressapptest 1.0.6-2.2``, ``memtester 4.6.0-1``, amd64),
  unpacked and run here for a few seconds each, output quoted in the tests. **[src]**
  stressapptest prints no timestamps; SIGINT gives ``Log: User exiting early (23 seconds
  remaining)``, the statistics, then ``Status: PASS``. memtester 4.6.0 writes its progress and
  backspaces into a pipe.
- memtester's source, ``jnavila/memtester@026768d:memtester.c`` (4.5.1), ``tests.c@08ac313``,
  ``output.c@30e5b41``. **[src]**

  - ``memtester version %s (%d-bit)``, ``want %lluMB (%llu bytes)``, ``got  %lluMB (%llu
    bytes)`` then ``, trying mlock ...`` and ``locked.``, or ``too many pages, reducing...`` /
    ``over system/pre-process limit, reducing...`` (another ``got`` line follows), ``insufficient
    permission.`` + ``Trying again, unlocked:``, ``failed for unknown reason.``.
  - Per loop ``Loop %lu`` (``/%lu`` when a loop count was given) ``:``, then ``  %-20s: `` per
    test, ``Stuck Address`` first, then the table in ``tests[]`` (15 tests, plus ``8-bit
    Writes`` / ``16-bit Writes`` when built with ``TEST_NARROW_WRITES``; ``MEMTESTER_TEST_MASK``
    skips some), ``ok`` only when the test passed, a blank line after the loop, ``Done.`` at the
    end. A failed test prints no ``ok``.
  - ``FAILURE: 0x%08lx != 0x%08lx at offset 0x%08lx.`` (or ``at physical address``) for every
    differing word, and ``FAILURE: possible bad address line at offset 0x%08lx.`` + ``Skipping
    to next test...`` for Stuck Address, go to **stderr**; the label went to stdout first.
  - Progress: ``setting %3u`` / ``testing %3u`` behind 11 backspaces and a ``-\\|/`` spinner
    behind one backspace each. That fork's ``output.c`` prints them only to a tty; Debian's
    memtester 4.6.0-1 wrote them into a pipe too (run here, quoted in the tests), and 4.3.0
    captures show them (lima-memtester).
  - Failures before any test: ``need memory argument, in MB``, ``failed to mmap ...``, the
    ``Usage: ...`` line, and the others in ``main()`` (exit code 1, ``EXIT_FAIL_NONSTARTER``).
- Rockchip's memtester (RK3576 SDK, ``memtester version 4.5.1_20231020``): a copy of its
  ``tests.c`` in the search index (repository not named there) ends every run with
  ``exit_result()``: a row of ``*``, ``memtester result:``, ``Log: had found %u failures.``,
  ``Status: PASS.`` or ``Status: FAIL - EXIT_FAIL_...`` (the ``switch`` lacks ``case`` labels, so
  it always says ``EXIT_FAIL_OTHERTEST``), and prints no ``Done.``. **[src]**
- Real memtester captures, quoted in the tests: ``ForlinxEmbedded/ForlinxEmbedded.github.io:
  platform/rockchip/ok3576-c/OK3576-C_Linux6_1_84_User_Manual.md`` §4.4 (RK3576 Buildroot, the
  Rockchip build, PASS); ``ssvb/lima-memtester:readme.txt`` (ARM 32-bit 4.3.0, ``Solid Bits :
  testing  23FAILURE: ...``: progress and merged stderr); friendlyarm/linux-3.4.y#3 (ARM,
  failures in every test, a label with no result followed by another label on the same line,
  and a FAILURE line printed after the next test's ``ok``); F5OEO/tezuka_fw#370 (4.7.1 32-bit
  header); an RK3568 Android capture of the Rockchip build interrupted with ``^C`` (the index
  names no repository) whose result block still says ``Status: PASS.``. The OK3576 manual's
  own paste has no ``Done.``. **[src]**

What the parsers add **[inferred]**
-----------------------------------
- Lines are cleaned by ``hil.rockchip.text`` (CRLF, ANSI codes, and control characters, so
  memtester's backspaces are gone and its progress words and spinner are left between the
  label and ``ok``); a line's stressapptest timestamp is dropped.
- stressapptest: ``status`` is the ``Status:`` line's PASS/FAIL, None when the capture ends
  before it. ``complete`` is true once that line is seen, unless the run stopped early: a run
  stopped by SIGINT still prints ``Status: PASS`` (the Debian capture in the tests), which must
  not count as a full-length pass. ``hardware_incidents`` comes from
  ``Stats: Found``, else from the ``Completed`` line. ``error_lines`` keeps the first
  ``MAX_ERROR_LINES`` ``... Error:`` lines (and the shell's ``Killed`` & co.);
  ``error_line_count`` counts them all.
- memtester: a test resolves as ``ok`` on its ``ok``, and as failed on a FAILURE line after its
  label or when the next label, ``Loop`` line or end comes with no ``ok`` (stderr may be
  discarded or arrive late: friendlyarm#3 shows both). A FAILURE line after a test said ``ok``
  is kept in ``failures`` but changes no count. A loop is done when the next ``Loop`` line, the
  end (``Done.`` or Rockchip's ``Status:`` line) or the blank line memtester prints after a loop
  comes with no test left open. ``^C`` in the capture means the open test was interrupted, not
  failed.
- memtester ``status``: FAIL when any test failed or the tool did not start (``errors``); PASS
  when ``complete``: the end was printed, no test is open, no ``^C``, and every requested loop
  is done (memtester without a loop count never completes by itself); else None.
  ``reported_status`` is the Rockchip build's own verdict, kept as printed even after a ``^C``.
- ``cut_short`` is None when the run is complete or a failure line says why it stopped;
  otherwise it says where the capture ends.
- A capture of several runs is split at each run's first line (``memtester version``;
  stressapptest's ``Log: Commandline`` or ``Stats: SAT revision``) once output was seen;
  ``*_runs`` return them all, ``parse_*`` the first. The shell's ``Killed`` & co. count once the
  tool's own output was seen; when both tools share a console they cannot be told apart, and
  both parsers keep them.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Iterable

from hil.rockchip.rkllm_log import iter_lines
from hil.rockchip.rknn_capture import shell_failures
from hil.rockchip.text import capture_name, clean_lines

MAX_ERROR_LINES = 20  # fault lines kept verbatim; a bad DIMM prints thousands
STRESSAPPTEST_KEYS = (
    "status", "status_reason", "version", "command", "target_mb", "target_seconds",
    "completed_mb", "seconds", "mb_per_s", "hardware_incidents", "errors", "throughput",
    "exited_early", "error_lines", "error_line_count", "complete", "cut_short",
)
MEMTESTER_KEYS = (
    "status", "version", "bits", "requested_bytes", "got_bytes", "locked_bytes",
    "loops_requested", "loops_done", "tests", "failures", "failure_count", "reported_status",
    "reported_failures", "errors", "complete", "cut_short",
)
# memtester.c tests[], with Stuck Address first and the TEST_NARROW_WRITES pair last
MEMTESTER_TESTS = (
    "Stuck Address", "Random Value", "Compare XOR", "Compare SUB", "Compare MUL", "Compare DIV",
    "Compare OR", "Compare AND", "Sequential Increment", "Solid Bits", "Block Sequential",
    "Checkerboard", "Bit Spread", "Bit Flip", "Walking Ones", "Walking Zeroes", "8-bit Writes",
    "16-bit Writes",
)


def _number(text: str) -> float | None:
    """A printed ``%.2f``, None when it is no finite number (``inf`` after a zero-length run)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- stressapptest ---------------------------------------------------------------------------------------
_STAMP = re.compile(r"^\s*\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\([^)]*\)\s?")
_SAT_COMMAND = re.compile(r"^\s*Log: Commandline - (.*)$")
_SAT_REVISION = re.compile(r"^\s*Stats: SAT revision (\S+?),")
_SAT_START = re.compile(r"^\s*Stats: Starting SAT, (\d+)M, (\d+) seconds")
_SAT_REMAINING = re.compile(r"^\s*Log: Seconds remaining: (\d+)")
_SAT_EARLY = re.compile(r"^\s*Log: ((?:User exiting|Exiting) early \(.*)$")
_SAT_FOUND = re.compile(r"^\s*Stats: Found (\d+) hardware incidents")
_SAT_COMPLETED = re.compile(
    r"^\s*Stats: Completed: ([\w.+-]+)M in ([\w.+-]+)s ([\w.+-]+)MB/s, with (-?\d+) hardware incidents, "
    r"(-?\d+) errors")
_SAT_PART = re.compile(r"^\s*Stats: (Memory Copy|File Copy|Net Copy|Data Check|Invert Data|Disk): "
                       r"([\w.+-]+)M at ([\w.+-]+)MB/s")
_SAT_STATUS = re.compile(r"^\s*Status: (PASS|FAIL) - (?!EXIT_FAIL_)(.*)$")  # not Rockchip memtester's
_SAT_ERROR = re.compile(r"^\s*[A-Z][a-z]+ Error: ")
_SHELL = re.compile(shell_failures(r"(?:stressapptest|memtester)\w*"))


class _Sat:
    """One stressapptest run being read, line by line."""

    def __init__(self) -> None:
        self.out: dict = dict.fromkeys(STRESSAPPTEST_KEYS)
        self.out.update(throughput={}, error_lines=[], error_line_count=0)
        self.remaining: int | None = None
        self.fatal: str | None = None
        self.recognized = False

    def starts_next(self, line: str) -> bool:
        return self.recognized and bool(_SAT_COMMAND.match(line) or (
            _SAT_REVISION.match(line) and self.out["version"] is not None))

    def feed(self, line: str) -> None:
        out, hit = self.out, True
        if m := _SAT_COMMAND.match(line):
            out["command"] = m[1].strip()
        elif m := _SAT_REVISION.match(line):
            out["version"] = m[1]
        elif m := _SAT_START.match(line):
            out["target_mb"], out["target_seconds"] = int(m[1]), int(m[2])
        elif m := _SAT_REMAINING.match(line):
            self.remaining = int(m[1])
        elif m := _SAT_EARLY.match(line):
            out["exited_early"] = m[1]
        elif m := _SAT_FOUND.match(line):
            out["hardware_incidents"] = int(m[1])
        elif m := _SAT_COMPLETED.match(line):
            out["completed_mb"], out["seconds"], out["mb_per_s"] = _number(m[1]), _number(m[2]), _number(m[3])
            if out["hardware_incidents"] is None:
                out["hardware_incidents"] = int(m[4])
            out["errors"] = int(m[5])
        elif m := _SAT_PART.match(line):
            out["throughput"][m[1]] = {"mb": _number(m[2]), "mb_per_s": _number(m[3])}
        elif m := _SAT_STATUS.match(line):
            out["status"], out["status_reason"] = m[1], m[2].strip()
        elif _SAT_ERROR.match(line) or (self.recognized and _SHELL.search(line)):
            out["error_line_count"] += 1
            if len(out["error_lines"]) < MAX_ERROR_LINES:
                out["error_lines"].append(line.strip())
            if not _SAT_ERROR.match(line) and out["status"] is None:
                self.fatal = self.fatal or line.strip()
        else:
            hit = False
        self.recognized |= hit

    def finish(self) -> dict:
        out = self.out
        out["complete"] = out["status"] is not None and out["exited_early"] is None
        out["cut_short"] = None if out["complete"] or self.fatal else self._where_it_ends()
        return out

    def _where_it_ends(self) -> str:
        out = self.out
        if not self.recognized:
            return "holds no stressapptest output"
        if out["exited_early"] is not None and out["status"] is not None:
            ran = f" after {out['seconds']:g} s" if out["seconds"] is not None else ""
            of = f" of {out['target_seconds']}" if out["target_seconds"] is not None else ""
            return f"the run stopped{ran}{of} ('{out['exited_early']}'); its verdict covers that part only"
        if out["completed_mb"] is not None or out["hardware_incidents"] is not None:
            return "ends after the statistics, before the 'Status:' line"
        if self.remaining is not None:
            of = f" of {out['target_seconds']}" if out["target_seconds"] is not None else ""
            return f"ends with {self.remaining}{of} seconds remaining, before 'Stats: Found ... hardware incidents'"
        if out["target_seconds"] is not None:
            return "ends after 'Stats: Starting SAT', before any 'Seconds remaining' line"
        return "ends before 'Stats: Starting SAT'"


def _sat_lines(lines: Iterable[str]) -> Iterable[str]:
    for line in lines:
        yield _STAMP.sub("", line, count=1)


def _split(reader: type, lines: Iterable[str]) -> tuple[list[dict], bool]:
    """The runs in ``lines`` (a new one where ``starts_next`` says), finished, and whether any
    line was recognised; runs without a recognised line are dropped unless there is no other."""
    runs = [reader()]
    for line in lines:
        if runs[-1].starts_next(line):
            runs.append(reader())
        runs[-1].feed(line)
    kept = [r for r in runs if r.recognized] or runs[:1]
    return [r.finish() for r in kept], any(r.recognized for r in runs)


def stressapptest_runs(text: str) -> list[dict]:
    """Every stressapptest run in ``text``, in order, each a dict of ``STRESSAPPTEST_KEYS``."""
    return _split(_Sat, _sat_lines(clean_lines(text)))[0]


def parse_stressapptest(text: str) -> dict:
    """The first stressapptest run in ``text`` (a serial or SSH capture), as a dict of
    ``STRESSAPPTEST_KEYS``:

    - ``status``: ``"PASS"``/``"FAIL"`` from the ``Status:`` line, None when the capture ends
      before it; ``status_reason`` the words after the dash.
    - ``version``, ``command``; ``target_mb``, ``target_seconds`` (``Stats: Starting SAT``).
    - ``completed_mb``, ``seconds``, ``mb_per_s``, ``errors`` (procedural) from ``Stats:
      Completed``; ``hardware_incidents``; ``throughput``: ``{"Memory Copy": {"mb", "mb_per_s"},
      ...}``.
    - ``exited_early``: the ``Log: ... exiting early (...)`` words, or None.
    - ``error_lines`` (the first ``MAX_ERROR_LINES``), ``error_line_count``.
    - ``complete``: bool. ``cut_short``: None, or where the capture ends.
    """
    return stressapptest_runs(text)[0]


# --- memtester -------------------------------------------------------------------------------------------
_MT_VERSION = re.compile(r"memtester version (\S+) \((\d+)-bit\)")
_MT_WANT = re.compile(r"^\s*want (\d+)MB \((\d+) bytes\)")
_MT_GOT = re.compile(r"^\s*got  ?(\d+)MB \((\d+) bytes\)(.*)$")
_MT_LOOP = re.compile(r"^\s*L?oop (\d+)(?:/(\d+))?:\s*$")  # friendlyarm#3 pasted "oop 2/5:"
_MT_LABEL = re.compile(r"(?:^|\s)(" + "|".join(re.escape(t) for t in MEMTESTER_TESTS) + r") *: ?")
_MT_FAILURE = re.compile(r"FAILURE: .*")
_MT_SKIP = re.compile(r"Skipping to next test\.\.\.")
_MT_NOISE = re.compile(r"(?:setting|testing) *\d+|[-\\|/]")
_MT_DONE = re.compile(r"^\s*Done\.\s*$")
_MT_RESULT = re.compile(r"^\s*memtester result:\s*$")
_MT_FOUND = re.compile(r"^\s*Log: had found (\d+) failures\.")
_MT_STATUS = re.compile(r"^\s*Status: (PASS)\.\s*$|^\s*Status: (FAIL) - EXIT_FAIL_\w+")
_MT_NONSTARTER = re.compile(
    r"Usage: \S+ \[-p physaddrbase|need memory argument, in MB|failed to parse (?:memory argument|number of "
    r"loops|physaddrbase arg)|This system can only address|bytes -?\d+ < pagesize|failed to (?:open|mmap) \S+ "
    r"for physical memory|bad physaddrbase arg|can not (?:use \S+ as device|mmap non-char device)|for mem "
    r"device, physaddrbase \(-p\) must be specified|error parsing MEMTESTER_TEST_MASK|loop suffix"
    r"|get page size failed")


class _Memtester:
    """One memtester run being read, line by line."""

    def __init__(self) -> None:
        self.out: dict = dict.fromkeys(MEMTESTER_KEYS)
        self.out.update(loops_done=0, tests={}, failures=[], failure_count=0, errors=[])
        self.open: str | None = None  # the test whose label came last and which has no result yet
        self.loop_open = False
        self.loop_no: int | None = None  # the number of the last Loop line
        self.resolved = 0  # tests resolved in the open loop
        self.blanks = 0  # empty lines since the open loop's last test
        self.interrupted = False
        self.stopped_in: str | None = None  # the test a ^C stopped
        self.ended = False  # Done. or Rockchip's Status: line
        self.in_result = False
        self.recognized = False

    def starts_next(self, line: str) -> bool:
        return self.recognized and bool(_MT_VERSION.search(line))

    def _count(self, name: str, result: str) -> None:
        self.out["tests"].setdefault(name, {"ok": 0, "failed": 0})[result] += 1

    def _resolve(self, result: str) -> None:
        """Close the open test with ``result`` (``ok``/``failed``)."""
        if self.open is not None:
            self._count(self.open, result)
            self.open = None
            self.resolved += 1

    def _close_loop(self) -> None:
        """The next loop or the end came: an open test without ``ok`` failed, unless ``^C``
        stopped it; a loop that ran to its end is done."""
        if self.interrupted:
            self.stopped_in = self.stopped_in or self.open
            self.open = None
        elif self.loop_open:
            self._resolve("failed")
            self.out["loops_done"] += 1
        self.loop_open, self.resolved = False, 0

    def _failure(self, text: str) -> None:
        self.out["failure_count"] += 1
        if len(self.out["failures"]) < MAX_ERROR_LINES:
            self.out["failures"].append(text.strip())
        self._resolve("failed")

    def _segment(self, text: str) -> None:
        """What follows a label, or a line without one: progress, ``ok``, FAILURE lines."""
        if m := _MT_FAILURE.search(text):
            before, failure = text[:m.start()], m[0]
            for part in re.split(r"(?=FAILURE: )", failure):
                if part.strip():
                    self._failure(part)
            text = before
        if _MT_SKIP.search(text):
            self._resolve("failed")
            return
        if _MT_NOISE.sub("", text).strip() == "ok":
            self._resolve("ok")

    def feed(self, line: str) -> None:
        out = self.out
        if line.strip():
            self.blanks = 0
        if "^C" in line:
            self.interrupted = self.recognized = True
            line = line.replace("^C", "")
        if m := _MT_VERSION.search(line):
            out["version"], out["bits"] = m[1], int(m[2])
        elif m := _MT_WANT.match(line):
            out["requested_bytes"] = int(m[2])
        elif m := _MT_GOT.match(line):
            out["got_bytes"] = int(m[2])
            out["locked_bytes"] = int(m[2]) if "locked." in m[3] else None
            if shell := _SHELL.search(m[3]):
                out["errors"].append(shell[0].strip())
        elif m := _MT_LOOP.match(line):
            self._close_loop()
            self.loop_open, self.loop_no = True, int(m[1])
            out["loops_requested"] = int(m[2]) if m[2] else None
        elif not line.strip():
            # memtester.c's printf("\n") after a loop's last test; a capture's final line end
            # also gives one empty line, so only a second one ends the loop (in finish)
            self.blanks += bool(self.loop_open and self.open is None and self.resolved)
            return
        elif _MT_DONE.match(line):
            self._close_loop()
            self.ended = True
        elif _MT_RESULT.match(line):
            self._close_loop()
            self.in_result = True
        elif self.in_result and (m := _MT_FOUND.match(line)):
            out["reported_failures"] = int(m[1])
        elif self.in_result and (m := _MT_STATUS.match(line)):
            out["reported_status"] = m[1] or m[2]
            self.ended = True
        elif labels := list(_MT_LABEL.finditer(line)):
            self._segment(line[:labels[0].start()])
            for i, label in enumerate(labels):
                self._resolve("failed")  # the label before it printed no ok
                self.open = label[1]
                self.loop_open = True
                end = labels[i + 1].start() if i + 1 < len(labels) else len(line)
                self._segment(line[label.end():end])
        elif _MT_FAILURE.search(line) or _MT_SKIP.search(line):
            self._segment(line)
        elif (m := _MT_NONSTARTER.search(line)) or (self.recognized and (m := _SHELL.search(line))):
            out["errors"].append(line[m.start():].strip())
        else:
            return
        self.recognized = True

    def finish(self) -> dict:
        out = self.out
        if self.blanks >= 2:
            self._close_loop()
        failed = any(t["failed"] for t in out["tests"].values())
        loops_left = out["loops_requested"] is not None and out["loops_done"] < out["loops_requested"]
        out["complete"] = (self.ended and not self.interrupted and self.open is None and not out["errors"]
                           and out["loops_done"] > 0 and not loops_left)
        out["status"] = "FAIL" if failed or out["errors"] else "PASS" if out["complete"] else None
        out["cut_short"] = None if out["complete"] or out["errors"] else self._where_it_ends(loops_left)
        return out

    def _where_it_ends(self, loops_left: bool) -> str:
        out = self.out
        if not self.recognized:
            return "holds no memtester output"
        loop = self.loop_no or out["loops_done"] + 1
        of = f"/{out['loops_requested']}" if out["loops_requested"] else ""
        how = "is interrupted (^C)" if self.interrupted else "ends"
        if (test := self.open or self.stopped_in) is not None:
            return f"{how} during {test} in loop {loop}{of}"
        if self.loop_open:
            return f"{how} inside loop {loop}{of}, between tests"
        if self.ended and out["loops_requested"] is None:
            return f"{how} after {out['loops_done']} loops (no loop count was given)"
        if self.ended or loops_left:
            return f"{how} after {out['loops_done']} of {out['loops_requested'] or '?'} loops"
        if out["got_bytes"] is None:
            return f"{how} before the memory was allocated ('got ...')"
        return f"{how} before the first loop"


def memtester_runs(text: str) -> list[dict]:
    """Every memtester run in ``text``, in order, each a dict of ``MEMTESTER_KEYS``."""
    return _split(_Memtester, clean_lines(text))[0]


def parse_memtester(text: str) -> dict:
    """The first memtester run in ``text`` (a serial or SSH capture, with or without its tty
    progress and with stderr merged or not), as a dict of ``MEMTESTER_KEYS``:

    - ``status``: ``"PASS"``/``"FAIL"``/None (see the module docstring); ``complete``, ``cut_short``.
    - ``version`` (as printed, ``4.5.1_20231020``), ``bits``; ``requested_bytes`` (``want``),
      ``got_bytes`` and ``locked_bytes`` (None when mlock did not lock).
    - ``loops_requested`` (None: run until stopped), ``loops_done``.
    - ``tests``: ``{name: {"ok": n, "failed": n}}`` over all loops.
    - ``failures``: the first ``MAX_ERROR_LINES`` FAILURE lines; ``failure_count``: all of them.
    - ``reported_status``, ``reported_failures``: the Rockchip build's result block, or None.
    - ``errors``: why memtester did not start or was killed, in its (or the shell's) words.
    """
    return memtester_runs(text)[0]


def main(path: str) -> int:
    """``hil parse stress FILE``: ``{"stressapptest": ..., "memtester": ...}``, each the first
    run of that tool in FILE (``-`` = stdin) or None: one parser for both, because a soak runs
    the two tools on one console at once. Warns on
    stderr when neither tool's output is in the file, and when a tool ran more than once."""
    name = capture_name(path)
    readers = {"stressapptest": _Sat, "memtester": _Memtester}
    runs: dict[str, list] = {tool: [reader()] for tool, reader in readers.items()}
    try:
        stream = contextlib.nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb")
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    with stream as stream:
        for line in iter_lines(stream):
            for tool, reader in readers.items():
                fed = _STAMP.sub("", line, count=1) if tool == "stressapptest" else line
                if runs[tool][-1].starts_next(fed):
                    runs[tool].append(reader())
                runs[tool][-1].feed(fed)
    out: dict = {}
    for tool, found in runs.items():
        kept = [r for r in found if r.recognized]
        out[tool] = kept[0].finish() if kept else None
        if len(kept) > 1:
            print(f"warning: {name} holds {len(kept)} runs of {tool}; the JSON has the first "
                  f"(hil.rockchip.stress.{tool}_runs reads them all)", file=sys.stderr)
    if all(v is None for v in out.values()):
        print(f"warning: {name} does not look like stressapptest or memtester output: none of its lines "
              f"is stressapptest's ('Stats: ...', 'Status: PASS/FAIL - ...', '... Error: ...') or "
              f"memtester's ('memtester version', 'Loop N:', '  Test name : ok', 'FAILURE: ...')", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0
