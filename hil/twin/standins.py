"""Stand-ins for the RKLLM demo binaries (llm, imgenc, demo) of each runtime version."""

from __future__ import annotations

from hil.twin.cpio import CpioWriter


def add_files(cpio: CpioWriter, manifest: dict) -> None:
    """Add the stand-ins and runtime data for one image."""
