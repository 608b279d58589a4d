"""Turning a captured transcript (a pipe, an SSH channel or a serial console) into clean lines.

Serial captures carry CRLF (often ``\\r\\r\\n``), ANSI colour and VT100 cursor codes from the
shell prompt, and lines padded with trailing spaces; the Rockchip parsers match on what is
left after removing those, so they all start here.
"""

from __future__ import annotations

import re

# CSI (colours, cursor moves, bracketed-paste mode), OSC (window titles), charset selection and
# the remaining two-character escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[()][0-9A-Za-z]"
    r"|\x1b[@-Z\\-_=>]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_lines(text: str) -> list[str]:
    """Lines of ``text`` with escapes removed, any CR/LF combination as one break, trailing
    spaces stripped. A lone CR (a redrawn line) also counts as a break."""
    text = _ESCAPES.sub("", text)
    text = re.sub(r"\r*\n|\r+", "\n", text)
    return [_CONTROL.sub("", line).rstrip() for line in text.split("\n")]
