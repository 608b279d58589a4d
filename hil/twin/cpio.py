"""A deterministic writer for newc cpio archives (the initramfs format).

The host has no ``cpio`` by default, and a reproducible image needs fixed owners,
modes and timestamps anyway, so the archive is written here.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from pathlib import Path


def _header(ino: int, mode: int, nlink: int, size: int, name: bytes, rdev: tuple[int, int] = (0, 0)) -> bytes:
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + b"\0" * (-len(head) % 4)


class CpioWriter:
    """Collects entries and writes them in sorted order with root ownership and mtime 0."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, bytes, tuple[int, int]]] = {}

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        self._add_parents(path)
        self._entries[path.strip("/")] = (stat.S_IFDIR | mode, b"", (0, 0))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._add_parents(path)
        self._entries[path.strip("/")] = (stat.S_IFREG | mode, data, (0, 0))

    def add_symlink(self, path: str, target: str) -> None:
        self._add_parents(path)
        self._entries[path.strip("/")] = (stat.S_IFLNK | 0o777, target.encode(), (0, 0))

    def add_chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._add_parents(path)
        self._entries[path.strip("/")] = (stat.S_IFCHR | mode, b"", (major, minor))

    def add_tree(self, src: Path, dest: str = "", exclude: tuple[str, ...] = ()) -> None:
        """Add a directory tree from disk, keeping modes and symlinks, dropping owners and times."""
        src = Path(src)
        for root, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d not in exclude)
            rel = os.path.relpath(root, src)
            base = dest.strip("/") if rel == "." else os.path.join(dest.strip("/"), rel).strip("/")
            if base:
                self.add_dir(base, os.stat(root).st_mode & 0o7777)
            for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
                full = os.path.join(root, name)
                target = os.path.join(base, name)
                if os.path.islink(full):
                    self.add_symlink(target, os.readlink(full))
                else:
                    self.add_file(target, Path(full).read_bytes(), os.stat(full).st_mode & 0o7777)

    def _add_parents(self, path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            self._entries.setdefault(parent, (stat.S_IFDIR | 0o755, b"", (0, 0)))

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        for ino, name in enumerate(sorted(self._entries), start=1):
            mode, data, rdev = self._entries[name]
            nlink = 2 if stat.S_ISDIR(mode) else 1
            out.write(_header(ino, mode, nlink, len(data), name.encode(), rdev))
            out.write(data + b"\0" * (-len(data) % 4))
        out.write(_header(0, 0, 1, 0, b"TRAILER!!!"))
        return out.getvalue()

    def to_gzip(self) -> bytes:
        """gzip with mtime 0 and no file name, so equal input gives equal bytes."""
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6, filename="") as gz:
            gz.write(self.to_bytes())
        return buf.getvalue()
