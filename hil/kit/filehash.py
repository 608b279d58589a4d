"""The sha256 of a local file, streamed so a multi-gigabyte model never sits in memory."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of the file's content, as ``sha256sum`` prints it."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
