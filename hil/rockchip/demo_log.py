"""Transcripts of the RKLLM multimodal demo binaries ``imgenc``, ``demo`` and ``llm``
(rockchip.md §3.3): their timing lines, the vision encoder's tensors, and the dialogue.

The runtime's own lines (version, perf tables, errors) are ``rkllm_log``'s concern; this
module reads what the demo programs print around them. ``parse`` returns a ``DemoLog``
and ``split_turns`` only the dialogue (attrs classes; ``attr.asdict`` gives plain data).
"""

from __future__ import annotations

import re

import attr

from hil.rockchip.rkllm_log import split_marker
from hil.rockchip.text import clean_lines

_FIGURES = {
    "model_loaded_ms": re.compile(r"main: Model loaded in\s+([\d.]+) ms"),
    "llm_loaded_ms": re.compile(r"main: LLM Model loaded in\s+([\d.]+) ms"),
    "encoder_loaded_ms": re.compile(r"main: ImgEnc Model loaded in\s+([\d.]+) ms"),
    "encoder_ms": re.compile(r"main: (?:Encoder the image cost|ImgEnc Model inference took)\s+([\d.]+) ms"),
}
_CORE_NUM = re.compile(r"===the core num is (-?\d+)===")
_TENSOR = re.compile(
    r"^\s*index=(\d+), name=(.*?), n_dims=(\d+), dims=\[([-\d, ]*)\], n_elems=(\d+), size=(\d+), "
    r"fmt=(\w+), type=(\w+)")
_INPUT_HW = re.compile(r"model input height=(\d+), width=(\d+), channel=(\d+)")
_INIT = re.compile(r"\brkllm init (success|failed)\b")
_USER = re.compile(r"^user:(?: (.*))?$")
_ROBOT = re.compile(r"(?:^|\s)robot:(?: |$)")
_TABLE_START = re.compile(r"^-{86}$|^\s*Stage\s+Total Time \(ms\)")
_RUN_ERROR = re.compile(r"^run error$|\\run error$")


@attr.s(frozen=True)
class TensorAttr:
    """One ``rknn_tensor_attr`` line; ``dims`` cut to ``n_dims``."""

    index = attr.ib()
    name = attr.ib()
    dims = attr.ib()
    fmt = attr.ib()
    type = attr.ib()


@attr.s(frozen=True)
class Turn:
    """One ``user:`` / ``robot:`` exchange.

    ``prompt``: the prompt as shown (the demo echoes a menu number as its canned prompt; typed
    input shows only if the terminal echoed it, else ""). ``answer``: the streamed text without
    the runtime's log lines and without the final newline. ``failed``: the run reported an
    error (``\\run error`` or an ``E rkllm:`` line)."""

    prompt = attr.ib()
    answer = attr.ib()
    failed = attr.ib(default=False)


@attr.s(frozen=True, kw_only=True)
class DemoLog:
    """What the demo printed; None where it did not print it."""

    model_loaded_ms = attr.ib(default=None)  # "main: Model loaded in": imgenc's encoder, llm's LLM
    llm_loaded_ms = attr.ib(default=None)  # demo: "main: LLM Model loaded in"
    encoder_loaded_ms = attr.ib(default=None)  # demo: "main: ImgEnc Model loaded in"
    # one image through the vision encoder: imgenc "Encoder the image cost", demo (1.2.2+)
    # "ImgEnc Model inference took"
    encoder_ms = attr.ib(default=None)
    core_num = attr.ib(default=None)  # the rknn_core_num argument, 1.2.1+
    rkllm_init_ok = attr.ib(default=None)  # "rkllm init success" -> True, "... failed" -> False
    inputs = attr.ib(factory=list)  # [TensorAttr] of the vision encoder
    outputs = attr.ib(factory=list)
    image_height = attr.ib(default=None)
    image_width = attr.ib(default=None)
    image_tokens = attr.ib(default=None)  # encoder output dims (tokens, embed size)
    embed_size = attr.ib(default=None)
    turns = attr.ib(factory=list)  # [Turn]


def _image_size(tensor: TensorAttr) -> tuple[int, int] | None:
    dims = tensor.dims
    if len(dims) != 4:
        return None
    return (dims[2], dims[3]) if tensor.fmt == "NCHW" else (dims[1], dims[2])


def split_turns(text: str) -> list[Turn]:
    """The ``user:`` / ``robot:`` exchanges of a ``demo`` or ``llm`` transcript, in order."""
    return _turns(clean_lines(text))


def _turns(lines: list[str]) -> list[Turn]:
    """Split the dialogue: each ``robot:`` after a ``user:`` opens an answer that runs to the
    perf table, the next ``user:`` or the end."""
    turns = []
    prompt = None  # None: outside a user: ... robot: exchange
    answer: list[str] | None = None  # None: before robot:
    failed = False

    def close():
        turns.append(Turn(prompt, "".join(answer).rstrip("\n"), failed))

    for line in lines:
        if user := _USER.match(line):
            if answer is not None:
                close()
            prompt, answer, failed = "", None, False
            line = user[1] or ""
        if prompt is None:
            continue
        if answer is None:
            robot = _ROBOT.search(line)
            echoed = split_marker(line[: robot.start()] if robot else line)[0].strip()
            prompt = echoed or prompt  # a menu number is followed by its canned prompt
            if robot is None:
                continue
            answer, line = [], line[robot.end():]
            if not line:
                continue
        before, level, source, body = split_marker(line)
        if _TABLE_START.match(body):
            answer.append(before if level else "")
            close()
            prompt, answer = None, None
        elif level is not None:
            failed = failed or (level == "E" and source == "rkllm")
            answer.append(before)  # the log line took the newline; the answer goes on
        elif m := _RUN_ERROR.search(line):
            failed = True
            answer.append(line[: m.start()])
        else:
            answer.append(line + "\n")
    if answer is not None:
        close()
    return turns


def parse(text: str) -> DemoLog:
    """Everything the demo printed (the first value of each figure)."""
    lines = clean_lines(text)
    found: dict = {}
    section = None
    for line in lines:
        for key, pattern in _FIGURES.items():
            if key not in found and (m := pattern.search(line)):
                found[key] = float(m[1])
        if "core_num" not in found and (m := _CORE_NUM.search(line)):
            found["core_num"] = int(m[1])
        if "rkllm_init_ok" not in found and (m := _INIT.search(line)):
            found["rkllm_init_ok"] = m[1] == "success"
        if line.strip() in ("input tensors:", "output tensors:"):
            section = line.strip().split()[0] + "s"
            section = None if section in found else section  # the first dump only
        elif section and (m := _TENSOR.match(line)):
            dims = tuple(int(d) for d in m[4].split(","))[: int(m[3])]
            found.setdefault(section, []).append(TensorAttr(int(m[1]), m[2], dims, m[7], m[8]))
        elif m := _INPUT_HW.search(line):
            found.setdefault("image_height", int(m[1]))
            found.setdefault("image_width", int(m[2]))
            section = None
    if found.get("inputs") and "image_height" not in found and (hw := _image_size(found["inputs"][0])):
        found["image_height"], found["image_width"] = hw
    if found.get("outputs") and len(found["outputs"][0].dims) >= 2:
        found["image_tokens"], found["embed_size"] = found["outputs"][0].dims[-2:]
    return DemoLog(turns=_turns(lines), **found)
