"""Real ``.rknn`` model files (RKNN-Toolkit2 / librknnrt), read on the host from their header
and trailing JSON only: a vision encoder is hundreds of MB, so the model blob is never read.

Facts relied on (model-files.md; verified on the Rockchip-built samples of
``selftest/unit/rknn_samples``):

- Layout (§1.1; lutzroeder/netron ``source/rknn.js``): ``RKNN`` + 4 zero bytes, u64 container
  version at 8 (6 for every toolkit2 file), u64 blob size N at 16, zero padding to a 64-byte
  header when ``version & 0xff > 1`` (24 bytes otherwise), the blob, u64 JSON size M, the JSON;
  the file ends there. All little-endian.
- Trailing JSON (§1.3): ``version`` (toolkit), ``target_platform`` (lower-case list; an
  RK3566/RK3568 build says ``["rk3566"]``), ``norm_tensor[]`` (``tensor_id``, ``url`` = name,
  ``size`` = shape) and ``graph[]``, which maps ``left`` ``input``/``output`` ordinal
  ``left_tensor_id`` to ``right_tensor_id`` (a norm_tensor id): graph order comes from there.
- The compiler version is only in the blob, a FlatBuffer whose root table ``Model`` has
  ``compiler`` as field 7 (netron ``tools/rknn.fbs``), e.g. ``1.6.2-source_code(compiler version:
  1.6.2b0 (6e4d1b714@2024-02-26T09:11:35))``, as the runtime's Model Information line prints it.
  It sits near the blob's start, so it is read from the first ``_FLATBUFFER_WINDOW`` bytes and
  left unknown when it is not there.
- Other signatures (netron ``rknn.js``): ``CYPTRKNN`` is an encrypted model (nothing readable);
  ``RKNX`` is the RKNN3 format (0x50-byte header then a FlatBuffer; netron e8b9e5e1), whose
  fields are not decoded here; ``RKNN`` at bytes 4..7 is a bare blob ("RKNN Lite"); ``VPMN`` is
  an OpenVX NBG of the toolkit1 era. What any other file looks like is ``hil.rockchip.magic``'s.
"""

from __future__ import annotations

import json
import os
import re
import struct

import attr

from hil.rockchip import magic
from hil.rockchip.magic import looks_like, show

MAGIC = b"RKNN"
_JSON_LIMIT = 64 * 1024 * 1024  # real trailers are a few KB; anything this large is no trailer
_FLATBUFFER_WINDOW = 64 * 1024
_COMPILER_FIELD = 7  # Model.compiler in netron's tools/rknn.fbs
_COMPILER = re.compile(r"compiler version:\s*(.+?)\)?\s*$")


class ModelFileError(ValueError):
    """A model file that cannot be what it claims: the message names the file and the cause."""


@attr.s(frozen=True)
class Tensor:
    name: str = attr.ib()
    shape: tuple[int, ...] = attr.ib(converter=tuple)

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape)}


@attr.s(frozen=True, kw_only=True)
class RknnFile:
    """What an ``.rknn`` file says about itself; unknown fields are None or empty (encrypted and
    RKNN3 files carry nothing readable)."""

    path = attr.ib(converter=str)
    format: str = attr.ib(default="rknn")  # "rknn", or "rknn3" for RKNX files
    encrypted: bool = attr.ib(default=False)
    container_version: int | None = attr.ib(default=None)
    target_platform: list[str] = attr.ib(factory=list)
    toolkit_version: str | None = attr.ib(default=None)
    compiler_version: str | None = attr.ib(default=None)
    inputs: list[Tensor] = attr.ib(factory=list)
    outputs: list[Tensor] = attr.ib(factory=list)

    def to_json(self) -> dict:
        out = {
            "file": self.path,
            "format": self.format,
            "container_version": self.container_version,
            "target_platform": list(self.target_platform),
            "toolkit_version": self.toolkit_version,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "encrypted": self.encrypted,
        }
        if self.compiler_version is not None:
            out["compiler_version"] = self.compiler_version
        return out


def _u64(data: bytes, offset: int = 0) -> int:
    return struct.unpack_from("<Q", data, offset)[0]


def _refuse_magic(path: str, head: bytes, tail: bytes) -> ModelFileError:
    if head[4:8] == MAGIC:
        return ModelFileError(f"{path}: a bare RKNN FlatBuffer ('RKNN Lite', no container header): librknnrt "
                              f"loads .rknn files as rknn-toolkit2 exports them; export the model again")
    if head.startswith(b"VPMN"):
        return ModelFileError(f"{path}: an OpenVX NBG file of the RKNN-Toolkit1 era, which librknnrt does not "
                              f"load: convert the source model with rknn-toolkit2")
    if head.startswith(MAGIC):
        return ModelFileError(f"{path}: starts with 'RKNN' but bytes 4..7 are not zero ({show(head)}): not a "
                              f"container rknn-toolkit2 writes; export the model again")
    what = looks_like(head, tail, path)
    return ModelFileError(f"{path}: not an .rknn model: it starts with {show(head)}, not 'RKNN'"
                          + (f"; it looks like {what}" if what else ""))


def read_rknn(path) -> RknnFile:
    """The header and trailing JSON of an ``.rknn`` file, read with seeks (the blob is never
    read, beyond a bounded look at its start for the compiler version).

    Raises ModelFileError naming the file and the cause: missing or empty, cut short (what the
    header promises against the file's size), a wrong magic (with what the file looks like),
    an unreadable JSON trailer, or one without ``target_platform``."""
    path = str(path)
    with magic.opened(path, ModelFileError, "an .rknn file") as f:
        return _read(f, path, os.fstat(f.fileno()).st_size)


def _read(f, path: str, size: int) -> RknnFile:
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty (0 bytes): copy the model again")
    head = f.read(64)
    if head.startswith(magic.RKNN_ENCRYPTED):
        return RknnFile(path=path, encrypted=True)
    if head.startswith(magic.RKNN3):
        return RknnFile(path=path, format="rknn3")
    if not head.startswith(magic.RKNN):
        f.seek(max(0, size - 64))
        raise _refuse_magic(path, head, f.read(64))
    if len(head) < 24:
        raise ModelFileError(f"{path}: cut short: the file has {size} bytes, less than the 24-byte RKNN header")
    version, blob = _u64(head, 8), _u64(head, 16)
    header = 64 if (version & 0xFF) > 1 else 24
    if version >> 8 not in (0, 0x10):
        raise ModelFileError(f"{path}: unknown RKNN container version {version} (0x{version:x}): files of "
                             f"rknn-toolkit2 say 6; the file is damaged or of a format this reader does not know")
    trailer_at = header + blob
    if size < trailer_at + 8:
        raise ModelFileError(f"{path}: cut short: the header says blob {blob} bytes, so the file needs at least "
                             f"{trailer_at + 8} bytes, but it has {size} bytes: copy the model again")
    f.seek(trailer_at)
    length = _u64(f.read(8))
    expected = trailer_at + 8 + length
    if size < expected:
        raise ModelFileError(f"{path}: cut short: the header says blob {blob} + JSON {length} bytes "
                             f"({expected} bytes in all) but the file has {size} bytes: copy the model again")
    if size > expected:
        raise ModelFileError(f"{path}: the header says blob {blob} + JSON {length} bytes ({expected} bytes in all) "
                             f"but the file has {size} bytes, {size - expected} more: bytes were appended or the "
                             f"header is damaged")
    if length > _JSON_LIMIT:
        raise ModelFileError(f"{path}: the JSON trailer would be {length} bytes, far beyond any rknn-toolkit2 "
                             f"file: the header is damaged")
    try:
        meta = json.loads(f.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFileError(f"{path}: the {length}-byte JSON trailer at offset {trailer_at + 8} is unreadable "
                             f"({e}): the file is damaged; export or copy it again") from None
    if not isinstance(meta, dict) or "target_platform" not in meta:
        keys = ", ".join(sorted(meta)) if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{path}: the JSON trailer has no target_platform (it has: {keys}): not a model "
                             f"rknn-toolkit2 exported")
    platforms = meta["target_platform"]
    if isinstance(platforms, str):
        platforms = [platforms]
    inputs, outputs = _graph(path, meta)
    f.seek(header)
    toolkit = meta.get("version")
    return RknnFile(path=path, container_version=version, target_platform=[str(p) for p in platforms],
                    toolkit_version=str(toolkit) if toolkit is not None else None,
                    compiler_version=_compiler_version(f.read(min(blob, _FLATBUFFER_WINDOW))),
                    inputs=inputs, outputs=outputs)


def _graph(path: str, meta: dict) -> tuple[list[Tensor], list[Tensor]]:
    """Inputs and outputs in graph order, through ``graph`` -> ``norm_tensor``."""
    tensors = {}
    for t in meta.get("norm_tensor") or []:
        if isinstance(t, dict) and "tensor_id" in t:
            tensors[t["tensor_id"]] = Tensor(str(t.get("url", "")), tuple(int(d) for d in t.get("size") or ()))
    ends: dict[str, list[tuple[int, Tensor]]] = {"input": [], "output": []}
    for edge in meta.get("graph") or []:
        if not isinstance(edge, dict) or edge.get("left") not in ends:
            continue
        if edge.get("right", "norm_tensor") != "norm_tensor":
            continue
        rid = edge.get("right_tensor_id")
        if rid not in tensors:
            raise ModelFileError(f"{path}: the JSON trailer maps {edge['left']} {edge.get('left_tensor_id')} to "
                                 f"norm_tensor {rid}, which it does not list: the file is damaged")
        ends[edge["left"]].append((int(edge.get("left_tensor_id", 0)), tensors[rid]))
    return ([t for _, t in sorted(ends["input"], key=lambda e: e[0])],
            [t for _, t in sorted(ends["output"], key=lambda e: e[0])])


def _compiler_version(blob: bytes) -> str | None:
    """``Model.compiler`` of the blob's FlatBuffer, if the bytes given hold it; the version
    inside ``(compiler version: X)`` when present, else the whole string. None on anything odd."""
    try:
        root = struct.unpack_from("<I", blob, 0)[0]
        if not 8 <= root < len(blob) - 4:
            return None
        vtable = root - struct.unpack_from("<i", blob, root)[0]
        if not 0 <= vtable < len(blob) - 2:
            return None
        vlen = struct.unpack_from("<H", blob, vtable)[0]
        if vlen < 4 + 2 * (_COMPILER_FIELD + 1) or vlen % 2 or vtable + vlen > len(blob):
            return None
        field = struct.unpack_from("<H", blob, vtable + 4 + 2 * _COMPILER_FIELD)[0]
        if not field:
            return None
        at = root + field
        start = at + struct.unpack_from("<I", blob, at)[0]
        length = struct.unpack_from("<I", blob, start)[0]
        if length == 0 or length > 4096 or start + 4 + length > len(blob):
            return None
        text = blob[start + 4:start + 4 + length].decode("utf-8")
    except (struct.error, UnicodeDecodeError):
        return None
    if not text.isprintable():
        return None
    m = _COMPILER.search(text)
    return m[1].strip() if m else text
