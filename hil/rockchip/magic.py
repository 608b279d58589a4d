"""What a file is, from its first and last bytes: the signatures the host-side readers
(``rknnfile``, ``rkllmfile``, ``rkfw``, ``inspect``) use to name what a wrong file looks like.

Sources: ``.rknn`` signatures from lutzroeder/netron ``source/rknn.js`` (model-files.md §1.1);
the ``.rkllm`` footer from model-files.md §2.1 item 4 / §2.3; RKFW/RKAF from
rockchip-linux/rkdeveloptool ``RKImage.cpp`` (tag 0x57464B52) and rkflashtool ``rkunpack.c``;
GPT (``EFI PART`` in LBA 1) and the MBR boot signature 0x55AA at byte 510 from the UEFI
specification; the Android sparse magic 0xED26FF3A from rkdeveloptool ``DefineHeader.h``; the
rest (ELF, zip, gzip, GGUF, TFLite ``TFL3`` at 4, safetensors' u64 length then ``{"``, ONNX's
protobuf field-1 tag 0x08,
then producer_name, field 2, such as ``pytorch``) are the formats' own published magics.
"""

from __future__ import annotations

import contextlib
import re

RKNN = b"RKNN\0\0\0\0"
RKNN_ENCRYPTED = b"CYPTRKNN"
RKNN3 = b"RKNX"
RKFW = b"RKFW"
RKAF = b"RKAF"
ELF = b"\x7fELF"
GGUF = b"GGUF"
SPARSE = b"\x3a\xff\x26\xed"
RKLLM_FOOTER = re.compile(rb"rkllm-toolkit version: ([0-9][^\s\x00]*)[\x00\r\n]*\Z")
HEAD = 4608  # enough for a GPT header behind a 4096-byte first sector


@contextlib.contextmanager
def opened(path: str, error: type[ValueError], what: str):
    """``path`` open for reading; a folder, a missing or an unreadable file is ``error`` naming it."""
    try:
        with open(path, "rb") as f:
            yield f
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {what}") from None
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot be read: {e.strerror or e}") from None


def rkllm_footer_version(tail: bytes) -> str | None:
    """The toolkit version of an ``rkllm-toolkit version: X`` footer ending ``tail``, if any."""
    m = RKLLM_FOOTER.search(tail)
    return m[1].decode("ascii") if m else None


def show(data: bytes) -> str:
    """The first bytes as hex and as text, for a message: ``7f 45 4c 46 ... ('\\x7fELF...')``."""
    head = data[:8]
    return f"{head.hex(' ')} ({head.decode('latin-1')!r})" if head else "nothing"


def raw_disk_image(head: bytes) -> str | None:
    """``"GPT"`` or ``"MBR"`` when ``head`` starts a whole-disk image (what ``wl 0`` writes)."""
    if head[512:520] == b"EFI PART" or head[4096:4104] == b"EFI PART":
        return "GPT"
    if head[510:512] == b"\x55\xaa":
        return "MBR"
    return None


def looks_like(head: bytes, tail: bytes = b"", name: str = "") -> str | None:
    """What a file seems to be, from its first bytes (and its last bytes, for the .rkllm
    footer), as a phrase for a message; None when nothing is recognised."""
    version = rkllm_footer_version(tail)
    if version:
        return f"an .rkllm model (its last bytes read 'rkllm-toolkit version: {version}')"
    if head.startswith((RKNN, RKNN_ENCRYPTED, RKNN3)):
        return "an .rknn model"
    if head.startswith(GGUF):
        return "a GGUF model (llama.cpp), which the Rockchip runtimes do not load"
    if head.startswith(ELF):
        return "an ELF binary (a program or shared library), not a model"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a packed download, or a PyTorch checkpoint): unpack it first"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file: gunzip it first"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "an xz-compressed file: unxz it first"
    if head.startswith(RKFW):
        return "a Rockchip firmware update.img (RKFW)"
    if head.startswith(RKAF):
        return "a Rockchip firmware package (RKAF, afptool output)"
    if head.startswith(SPARSE):
        return "an Android sparse image (one partition)"
    disk = raw_disk_image(head)
    if disk:
        return f"a raw disk image ({disk} partition table)"
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model: convert it with rknn-toolkit2"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself: fetch it with 'git lfs pull'"
    if head.lstrip()[:9].lower().startswith((b"<!doctype", b"<html", b"<?xml")):
        return "an HTML or XML page (a failed download?)"
    if head[8:10] == b'{"':
        return "a safetensors checkpoint: convert it with the Rockchip toolkit first"
    if head[:1] == b"\x08" and (name.lower().endswith(".onnx") or (head[2:3] == b"\x12" and (
            b"pytorch" in head or b"onnx" in head.lower()))):
        return "an ONNX model (protobuf): convert it with rknn-toolkit2 (rknn.load_onnx, rknn.build)"
    return None
