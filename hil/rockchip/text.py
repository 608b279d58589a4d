"""Turning a captured transcript (a pipe, an SSH channel or a serial console) into clean text.

Serial captures carry CRLF (often ``\\r\\r\\n``), ANSI colour and VT100 cursor codes from the
shell prompt, and lines padded with trailing spaces; the Rockchip parsers match on what is
left after removing those, so they all start here. The flashing tools' output and the
board console kept for reports go through the same cleaning.
"""

from __future__ import annotations

import re
import sys

# CSI (colours, cursor moves, bracketed-paste mode), OSC (window titles), charset selection and
# the remaining two-character escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[()][0-9A-Za-z]"
    r"|\x1b[@-Z\\-_=>]"
)
_LINE_END = re.compile(r"\r*\n|\r+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_lines(text: str) -> list[str]:
    """Lines of ``text`` with escapes and other control characters removed, any CR/LF
    combination as one break, trailing spaces stripped. A lone CR (a redrawn line) also
    counts as a break, so every state of a redrawn progress line is kept, the last one last."""
    text = _LINE_END.sub("\n", _ESCAPES.sub("", text))
    return [_CONTROL.sub("", line).rstrip() for line in text.split("\n")]


def clean_text(text: str) -> str:
    """``clean_lines`` joined with ``\\n``: the same cleaning for text kept whole."""
    return "\n".join(clean_lines(text))


_NOISE = re.compile(r"[\ufffd\x80-\x9f]")
NOISE_MIN = 8  # fewer garbled characters than this can be one glitch of a cable being plugged


def noise_chars(text: str) -> int:
    """How many characters of a decoded console capture are line noise: bytes that are no
    UTF-8 text (decoded as U+FFFD) and C1 control codes, as a wrong baud rate, a bad cable or
    a console server dropping bytes leave them."""
    return len(_NOISE.findall(text))


def capture_name(path: str) -> str:
    """How ``hil parse`` names its input in messages."""
    return "stdin" if path == "-" else path


def read_capture(path: str) -> bytes | None:
    """What ``hil parse`` reads: FILE, or stdin for ``-``; None after an error line on stderr."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return None
