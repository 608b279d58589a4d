"""The twin's firmware image file: what gets flashed into a virtual board's eMMC.

It is a plain ustar archive, written deterministically, holding the resolved manifest,
the kernel, the initramfs, the kernel command line and a SHA256SUMS list that is
checked before a board accepts the image. A real ``update.img`` is a different format;
the flash service and the suite only rely on "a file that is either valid or rejected
with a reason".
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

MAGIC_MEMBER = "RK3576-TWIN-IMAGE"
MEMBERS = ("manifest.json", "boot/Image", "boot/initrd.img", "boot/cmdline")


class FirmwareError(ValueError):
    """A file is not a usable twin firmware image."""


def write(path: Path, manifest: dict, kernel: bytes, initrd: bytes, cmdline: str) -> None:
    files = {
        "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n",
        "boot/Image": kernel,
        "boot/initrd.img": initrd,
        "boot/cmdline": cmdline.encode() + b"\n",
    }
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [(MAGIC_MEMBER, b"1\n"), *files.items(), ("SHA256SUMS", sums.encode())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def read(path: Path) -> dict:
    """Read and verify an image; returns manifest, kernel, initrd and cmdline."""
    path = Path(path)
    try:
        tar = tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as e:
        raise FirmwareError(f"{path.name}: not a twin firmware image ({e})") from e
    with tar:
        try:
            names = tar.getnames()
            if not names or names[0] != MAGIC_MEMBER:
                raise FirmwareError(f"{path.name}: not a twin firmware image (no {MAGIC_MEMBER} marker)")
            data = {m: tar.extractfile(m).read() for m in (*MEMBERS, "SHA256SUMS") if m in names}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise FirmwareError(f"{path.name}: image is truncated or corrupt ({e})") from e
    missing = [m for m in (*MEMBERS, "SHA256SUMS") if m not in data]
    if missing:
        raise FirmwareError(f"{path.name}: image is incomplete, missing {', '.join(missing)}")
    for line in data["SHA256SUMS"].decode().splitlines():
        digest, name = line.split(None, 1)
        if name not in data or hashlib.sha256(data[name]).hexdigest() != digest:
            raise FirmwareError(f"{path.name}: image is corrupt: {name} does not match its SHA256")
    try:
        manifest = json.loads(data["manifest.json"])
    except ValueError as e:
        raise FirmwareError(f"{path.name}: manifest.json is not JSON ({e})") from e
    return {
        "manifest": manifest,
        "kernel": data["boot/Image"],
        "initrd": data["boot/initrd.img"],
        "cmdline": data["boot/cmdline"].decode().strip(),
    }
