"""``hil inspect FILE...``: what each model, firmware or runtime library file says about itself,
one JSON object per file, from headers and footers only (real files are gigabytes).

The kind is found from the content (``hil.rockchip.magic``), not the extension: an ``.rknn``
(``RKNN``, ``CYPTRKNN``, ``RKNX``), an ``update.img`` (``RKFW``), an ``.rkllm`` (the
``rkllm-toolkit version:`` footer, or a name ending ``.rkllm``: third-party files have no
footer), a runtime library (ELF named ``librknnrt*`` / ``librkllmrt*``). A file that cannot be
read prints ``{file, error}`` and makes the exit status 1; the others still print.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hil.rockchip import magic, rkfw, rkllmfile, rknnfile, versions

LIBRARIES = ("librknnrt", "librkllmrt")


def _library(path: str, head: bytes) -> dict:
    name = Path(path).name
    library = next(lib for lib in LIBRARIES if name.startswith(lib))
    if not head.startswith(magic.ELF):
        raise ValueError(f"{path}: named like the {library} runtime but not an ELF shared object "
                         f"(it starts with {magic.show(head)}): copy the library again")
    found = versions.library_version(path)
    out = {"file": path, "format": "library", "library": library, "version": found.version if found else None}
    if found and found.build:
        out["build"] = found.build
    return out


def describe(path: str) -> dict:
    """The JSON object for one file; raises ValueError (ModelFileError, FirmwareError) or
    OSError with the file named when it cannot be read as what it is."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(magic.HEAD)
        f.seek(max(0, size - rkllmfile.TAIL))
        tail = f.read(rkllmfile.TAIL)
    name = Path(path).name
    if head.startswith((b"RKNN", magic.RKNN_ENCRYPTED, magic.RKNN3)):
        return rknnfile.read_rknn(path).to_json()
    if head.startswith(magic.RKFW):
        return rkfw.read_update_img(path).to_json()
    if magic.rkllm_footer_version(tail) or name.lower().endswith(".rkllm"):
        return rkllmfile.read_rkllm(path).to_json()
    if name.startswith(LIBRARIES):
        return _library(path, head)
    if name.lower().endswith(".rknn"):
        return rknnfile.read_rknn(path).to_json()  # refused, with what it looks like
    if name.lower().endswith(".img") and magic.raw_disk_image(head):
        return rkfw.read_update_img(path).to_json()  # refused: a raw image, for wl 0
    if size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes)")
    what = magic.looks_like(head, tail, path)
    raise ValueError(f"{path}: not a file 'hil inspect' reads (.rknn, .rkllm, update.img, librknnrt/librkllmrt): "
                     f"it starts with {magic.show(head)}" + (f" and looks like {what}" if what else ""))


def main(files: list[str]) -> int:
    """Print one JSON object per file (``jq`` reads them one after another); 1 if any failed."""
    status = 0
    for path in files:
        try:
            obj = describe(path)
        except (ValueError, OSError) as e:
            message = f"{path}: {e.strerror}" if isinstance(e, OSError) and e.strerror else str(e)
            obj, status = {"file": path, "error": message}, 1
        print(json.dumps(obj, indent=2, ensure_ascii=False), flush=True)
    return status
