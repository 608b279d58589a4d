"""RKLLM runtime logs, every generation from 1.0.x to 1.3.0, as one dict.

The formats differ by version (reference: rockchip.md §1 and §2):

- 1.0.x: no level prefixes; ``rkllm-runtime version: X, rknpu driver version: Y, platform: Z``
  on one line, or ``rkllm-runtime version: X`` then ``Query platform error!``; warnings and
  errors without a level either (``Warning: The model version is too old...``, ``The model
  target_platform does not match!``, ``RKLLM init failed!``).
- 1.1.x: ``I rkllm: `` / ``W rkllm: `` prefixes, a blank line after each; the performance
  table may come without prefix and has no memory block.
- 1.2.0: an ``Init`` row inside the table and a ``Memory Usage (GB)`` block.
- 1.2.1-1.2.3: a ``Model init time (ms)`` block before the first table, ``Peak Memory Usage (GB)``.
- 1.3.0: the same, with the memory possibly in ``(MB)``; ``E RKNN:`` lines may come without
  their ``[HH:MM:SS.mmm]`` stamp.

The toolkit that converted the model prints its own version (``rkllm-toolkit version: 1.2.1b1``
under a 1.3.0 runtime is common); both are kept as printed. ``init_failure`` names, in the
runtime's words, why a model did not initialise.

The log may be a serial capture (CRLF, ANSI codes, shell prompts, echoed commands) with the
demo's answer text (``robot: ...``) and ``I RKNN:`` / ``E RKNN:`` lines interleaved, or the
output of an application with its own log lines (Python logging, a web server, a progress
bar) around the runtime's; a log line is found wherever its ``X rkllm: `` / ``X RKNN: ``
marker starts on a line, so an application's prefix before it is no part of it.

``hil parse rkllm-log FILE`` reads the file in chunks (``iter_lines``), so a capture of any
size is parsed in bounded memory, and warns on stderr when nothing in it is an RKLLM log.

Memory is reported in MiB. The runtime measures VmHWM (``RKLLMPerfStat.memory_usage_mb``, a
kernel figure in KiB): its "GB" is KiB / 1024², i.e. GiB, and its "MB" is MiB, so GB is
multiplied by 1024 and MB taken as is.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from hil.rockchip.text import capture_name, clean_lines

KEYS = (
    "runtime_version", "driver_version", "platform", "toolkit_version", "max_context_limit",
    "npu_core_num", "target_platform", "model_dtype", "init_ms", "runs", "warnings", "errors",
)
RUN_KEYS = (
    "prefill_ms", "prefill_tokens", "prefill_tokens_per_s",
    "generate_ms", "generate_tokens", "generate_tokens_per_s", "peak_memory_mib",
)

# A log line of librkllmrt or librknnrt, wherever it starts (a streamed answer or a prompt may
# precede it on the same line); not inside quotes, so an echoed `grep 'E rkllm: '` is no log line.
MARKER = re.compile(r"(?<![\"'])([IWE]) (rkllm|RKNN): ?")

_VERSION = re.compile(
    r"rkllm-runtime version: (\d[\w.+-]*?),?(?:\s+rknpu driver version: (\S+?), platform: (\S+))?$")
_RKNN_DRIVER = re.compile(r"RKNN Driver Information[,:] version: (\d[\w.]*)")  # ":" up to librknnrt 1.x
# The model's own line (1.2.0+); the toolkit version is as printed (``1.2.1b1``, ``unknown``) and
# need not be the runtime's. 1.2.1b1 prints no ``model_dtype`` (rknn-llm#271, llmserver-rs#3).
_TOOLKIT = re.compile(
    r"rkllm-toolkit version: ([^\s,]+), max_context_limit: (\d+), npu_core_num: (\d+), "
    r"target_platform: ([^\s,]+)(?:, model_dtype: ([^\s,]+))?")
_INIT_TIME = re.compile(r"^\s*Model init time \(ms\)\s+([\d.]+)$")
_HEADER = re.compile(r"^\s*Stage\s+Total Time \(ms\)\s+Tokens")
_ROW = re.compile(r"^\s*(Init|Prefill|Generate)\s+([\d.]+)\s+(\d+|/)\s+([\d.]+|/)\s+([\d.]+|/)$")
_MEMORY = re.compile(r"^\s*(?:Peak )?Memory Usage \((GB|MB)\)$")
_NUMBER = re.compile(r"^\s*([\d.]+)$")

# Failure lines printed without a level prefix (by the runtime's older code paths, the demos,
# librknnrt's API wrappers or the shell); the error text starts where the match starts.
_FAILURES = re.compile(
    r"(?:RKLLM|rkllm)[ _]init failed!?"
    r"|The model target_platform does not match!?"
    r"|Query platform error!"
    r"|Platform error: .*"
    r"|Your platform is \w+\.?"
    r"|(?:error: )?prompt gather than max context \(.*\)"
    r"|Segmentation fault|段错误"
    r"|invalid magic characters.*"
    r"|(?:RKLLM: )?(?:error: )?failed to load model.*"
    r"|rknn_init fail! ret=-?\d+"
    r"|failed to malloc npu memory.*"
    r"|Get device properties failed"
    r"|^\\?run error$|\\run error$"
)


# Warnings printed without their level: 1.0.x's own, and the driver warning whose ``W `` a
# service's journal lost (jaylfc/taOS#1599).
_WARNINGS = re.compile(r"(?:rkllm: )?Warning: (?:The model version is too old|Your rknpu driver version is too low).*")

# ``init_failure``: what the runtime says when a model does not initialise, most telling first.
_INIT_CAUSES = (
    re.compile(r"target_platform.*does not match|does not match the RKNPU hardware"
               r"|target platform\S* is \S+, while current platform is", re.I),
    re.compile(r"invalid rkllm model|invalid rknn llm model magic|invalid magic characters"
               r"|Invalid RKNN model version|incompatible model version", re.I),
    re.compile(r"max_context\[\d+\] must be less than"),
)
# Failures that say that loading or init failed but not why: the runtime's first error before
# one (e.g. ``failed to malloc npu memory``) is the why, when it printed one.
_INIT_GENERIC = (
    re.compile(r"failed to load model|load model file error|load model failed", re.I),
    re.compile(r"rkllm[ _]init failed|rknn_init fail|Query platform error", re.I),
)


def split_marker(line: str) -> tuple[str, str | None, str | None, str]:
    """``(before, level, source, body)`` of a line: ``level`` is ``I``/``W``/``E`` and
    ``source`` ``rkllm``/``RKNN`` for a log line (``before`` is what preceded the marker,
    e.g. streamed answer text); otherwise ``(line, None, None, line)``."""
    m = MARKER.search(line)
    if m is None:
        return line, None, None, line
    return line[: m.start()], m[1], m[2], line[m.end():]


def _num(text: str) -> float | None:
    return None if text == "/" else float(text)


def _new_run() -> dict:
    return dict.fromkeys(RUN_KEYS)


def parse(text: str) -> dict:
    """The facts of an RKLLM log: see ``KEYS``; absent values are None, ``runs`` has one dict
    (``RUN_KEYS``) per performance table. Header fields keep their first value in the log."""
    return parse_lines(clean_lines(text))


def parse_lines(lines: Iterable[str]) -> dict:
    """``parse`` of a log given as its clean lines (``clean_lines`` or ``iter_lines``), which may
    be an iterator: they are consumed one at a time."""
    return _parse(lines)[0]


def _parse(lines: Iterable[str]) -> tuple[dict, bool]:
    """``(parse_lines result, whether any line looked like an RKLLM/RKNN runtime log line)``."""
    out: dict = dict.fromkeys(KEYS)
    out.update(runs=[], warnings=[], errors=[])
    run: dict | None = None
    memory_unit: str | None = None

    def first(key, value):
        if out[key] is None:
            out[key] = value

    recognized = False
    for line in lines:
        before, level, source, body = split_marker(line)
        if not recognized and (level is not None or "rkllm" in line.lower()):
            recognized = True
        if level is not None:
            logged = line[len(before):]
            if level == "W":
                out["warnings"].append(logged)
            elif level == "E":
                out["errors"].append(logged)
        else:
            if failure := _FAILURES.search(line):
                out["errors"].append(line[failure.start():].strip())
            elif warning := _WARNINGS.search(line):
                out["warnings"].append(warning[0].strip())

        if memory_unit is not None and source != "RKNN" and body.strip():
            unit, memory_unit = memory_unit, None
            if m := _NUMBER.match(body):
                run["peak_memory_mib"] = round(float(m[1]) * (1024 if unit == "GB" else 1), 2)
                continue

        if m := _VERSION.search(body):
            first("runtime_version", m[1])
            if m[2]:
                first("driver_version", m[2])
                first("platform", m[3])
        elif m := _RKNN_DRIVER.search(body):
            first("driver_version", m[1])
        elif m := _TOOLKIT.search(body):
            first("toolkit_version", m[1])
            first("max_context_limit", int(m[2]))
            first("npu_core_num", int(m[3]))
            first("target_platform", m[4])
            first("model_dtype", m[5])
        elif m := _INIT_TIME.match(body):
            first("init_ms", float(m[1]))
        elif _HEADER.match(body):
            run = _new_run()
            out["runs"].append(run)
        elif m := _ROW.match(body):
            if m[1] == "Init":
                first("init_ms", float(m[2]))
                continue
            stage = m[1].lower()
            if run is None or run[f"{stage}_ms"] is not None:  # a table pasted without its header
                run = _new_run()
                out["runs"].append(run)
            run[f"{stage}_ms"] = float(m[2])
            run[f"{stage}_tokens"] = None if m[3] == "/" else int(m[3])
            run[f"{stage}_tokens_per_s"] = _num(m[5])
        elif (m := _MEMORY.match(body)) and run is not None:
            memory_unit = m[1]
    recognized = recognized or any(out[k] is not None for k in KEYS if k not in ("runs", "warnings", "errors"))
    return out, recognized or bool(out["runs"])


def init_failure(log: dict) -> str | None:
    """Why the model did not initialise, in the runtime's own words (one of ``log["errors"]``
    of a ``parse`` result), or None when init succeeded or nothing says.

    A target platform mismatch comes first, then an invalid model (magic, version), then a
    context longer than the model's limit; then a failure to load or to init, which is told by
    the first error the runtime printed before it when there is one (``failed to malloc npu
    memory`` says more than ``load model file error!``). 1.1.x prints ``rkllm init success``
    after such errors: they still count.
    """
    errors = list(log.get("errors") or [])
    for cause in _INIT_CAUSES:
        if found := next((e for e in errors if cause.search(e)), None):
            return found
    for pattern in _INIT_GENERIC:
        at = next((i for i, e in enumerate(errors) if pattern.search(e)), None)
        if at is not None:
            why = [e for e in errors[:at] if not any(p.search(e) for p in _INIT_GENERIC)]
            return why[0] if why else errors[at]
    return None


CHUNK = 256 << 10  # bytes read at a time
MAX_PENDING = 2 << 20  # characters held waiting for a line end before a line is cut anyway
_OSC = "\x1b]"  # the one escape sequence (hil.rockchip.text) that may span a line end


def iter_lines(stream: BinaryIO, chunk: int = CHUNK) -> Iterator[str]:
    """The lines ``clean_lines(stream.read().decode("utf-8", errors="replace"))`` would give,
    read ``chunk`` bytes at a time so that memory stays bounded whatever the stream's size.

    Text is handed to ``clean_lines`` up to a line end (``\\n``) at which no escape sequence is
    open, so the lines are the same as from the whole text; only a line longer than
    ``MAX_PENDING`` characters is cut (at a lone CR if it has one, else anywhere).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while data := stream.read(chunk):
        pending += decoder.decode(data)
        cut, whole = _cut(pending)
        if cut:
            lines = clean_lines(pending[:cut])
            if whole:
                lines.pop()  # the empty rest after the last line end: the next line starts after it
            yield from lines
            pending = pending[cut:]
    yield from clean_lines(pending + decoder.decode(b"", final=True))


def _cut(text: str) -> tuple[int, bool]:
    """``(position, at a line end)`` up to which ``text`` can be cleaned on its own: after its
    last ``\\n`` outside an escape sequence, or 0 when there is none (yet). Past ``MAX_PENDING``
    characters, after the last line end of any kind, or at the end."""
    cut = text.rfind("\n") + 1
    while (osc := text.rfind(_OSC, 0, cut)) >= 0 and not any(c in text[osc + 2: cut] for c in "\x07\x1b"):
        cut = text.rfind("\n", 0, osc) + 1  # an OSC string still open at the cut may end later
    if cut or len(text) <= MAX_PENDING:
        return cut, True
    cut = max(text.rfind("\r", 0, len(text) - 1) + 1, text.rfind("\n") + 1)
    return (cut, True) if cut else (len(text), False)


def main(path: str) -> int:
    """``hil parse rkllm-log FILE``: print the parsed log as one JSON object (``-`` = stdin).

    The file is read in chunks. When no line of it looks like an RKLLM runtime log, a warning
    on stderr says so (and what was looked for); the JSON, all empty, is printed all the same.
    """
    name = capture_name(path)
    counts = {"lines": 0, "undecodable": 0}

    def counted(lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            counts["lines"] += 1
            counts["undecodable"] += line.count("\ufffd")
            yield line

    try:
        if path == "-":
            out, recognized = _parse(counted(iter_lines(sys.stdin.buffer)))
        else:
            with open(path, "rb") as f:
                out, recognized = _parse(counted(iter_lines(f)))
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    if not recognized:
        what = ("it is empty" if counts["lines"] <= 1 and not counts["undecodable"] else
                f"none of its {counts['lines']} lines has " + ", ".join((
                    "an 'I/W/E rkllm:' or 'I/W/E RKNN:' log line",
                    "an 'rkllm-runtime version:' line",
                    "a performance table ('Stage  Total Time (ms)  Tokens ...')",
                    "or any mention of rkllm")))
        binary = (f"; {counts['undecodable']} of its bytes are not UTF-8 text (a binary file?)"
                  if counts["undecodable"] else "")
        print(f"warning: {name} does not look like an RKLLM runtime log: {what}{binary}; every value in the "
              f"JSON is empty", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0
