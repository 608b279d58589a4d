"""Stand-ins for the vendor NPU runtime libraries (``librknnrt.so``, ``librkllmrt.so``).

Each is a few bytes whose strings carry the runtime version, which is all the suite reads
from them (``strings lib | grep``). Images install them under ``/usr/lib``
(``hil.twin.guestfiles``); the SDK demo bundle carries its own copies in ``lib/``
(``hil.twin.standins``).
"""

from __future__ import annotations

RKNN_BUILD = {"2.3.2": "429f97ae6b@2025-04-09T09:09:27", "2.3.3": "c824afd6c@2025-08-25T09:55:02"}


def runtime_library(name: str, version: str) -> bytes:
    """A stand-in shared object whose strings carry the version, as ``strings lib | grep`` expects."""
    if name == "librknnrt.so":
        text = f"librknnrt version: {version} ({RKNN_BUILD.get(version, '0000000000@2025-01-01T00:00:00')})"
    else:
        text = f"rkllm-runtime version: {version}"
    return b"\x7fELF-twin-stand-in\0" + text.encode() + b"\0"
