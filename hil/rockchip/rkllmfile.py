"""Real ``.rkllm`` model files (RKLLM-Toolkit / librkllmrt), read on the host from their last bytes.

Facts relied on (model-files.md §2; no real .rkllm was at hand to check them):

- The format is GGUF-derived with obfuscated metadata (§2.1 items 1-3: airockchip/rknn-llm#17,
  #129, a third-party study), so nothing at its start is readable text: ``max_context_limit``,
  ``npu_core_num``, ``target_platform`` and ``model_dtype`` come from the runtime's init line
  (``I rkllm: rkllm-toolkit version: ..., max_context_limit: ...``), not from the file (§2.3).
- The only cheap fact is a plain-ASCII footer at the very end, ``rkllm-toolkit version: X.Y.Z``
  (§2.1 item 4: the 1.3.1 writer adds no NUL; the one public 1.1.4 file has 29 bytes for the
  28-character text, so a terminator; gahingwoo/charsiu README). It is looked for in the last
  64 bytes, with an optional trailing NUL or newline (§2.3's regex).
- Files of third-party converters carry no footer (the runtime prints ``rkllm-toolkit version:
  unknown`` for them, jaylfc/taOS#1738): no footer is not an error.
- Runtime 1.0.x reported a bad model with GGUF's ``invalid magic characters`` (rknn-llm#17), so
  an early .rkllm may itself start with ``GGUF``; a GGUF start is refused only without a footer.
"""

from __future__ import annotations

import os

import attr

from hil.rockchip import magic
from hil.rockchip.magic import looks_like, rkllm_footer_version
from hil.rockchip.rknnfile import ModelFileError

TAIL = 64
MIN_SIZE = 4096  # a header with a tokenizer alone is far larger; real models are hundreds of MB
NOTE = ("max_context_limit, npu_core_num, target_platform and model_dtype are not readable from the file "
        "(its metadata is obfuscated): the runtime prints them at init ('I rkllm: rkllm-toolkit version: ..., "
        "max_context_limit: ...')")


@attr.s(frozen=True, kw_only=True)
class RkllmFile:
    path = attr.ib(converter=str)
    size: int = attr.ib()
    toolkit_version: str | None = attr.ib(default=None)

    def to_json(self) -> dict:
        return {"file": self.path, "format": "rkllm", "size": self.size,
                "toolkit_version": self.toolkit_version, "note": NOTE}


def read_rkllm(path) -> RkllmFile:
    """The size and footer of an ``.rkllm`` file (its last ``TAIL`` bytes and first 64 only).

    Raises ModelFileError for a missing or empty file, one too small to be a model, and one
    whose start says it is something else (an .rknn, a GGUF without the footer, ELF, zip...)."""
    path = str(path)
    with magic.opened(path, ModelFileError, "an .rkllm file") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(64)
        f.seek(max(0, size - TAIL))
        tail = f.read(TAIL)
    if size == 0:
        raise ModelFileError(f"{path}: the file is empty (0 bytes): copy the model again")
    version = rkllm_footer_version(tail)
    if head.startswith((magic.RKNN, magic.RKNN_ENCRYPTED, magic.RKNN3)):
        raise ModelFileError(f"{path}: an .rknn model, not an .rkllm (it starts with {head[:8]!r}): give it "
                             f"where the vision encoder (.rknn) goes")
    if head.startswith(magic.GGUF) and version is None:
        raise ModelFileError(f"{path}: a GGUF file (llama.cpp), not an .rkllm: convert it with rkllm-toolkit "
                             f"from the Hugging Face model (an .rkllm ends with an 'rkllm-toolkit version:' "
                             f"footer; this file has none)")
    if version is None:
        what = looks_like(head, b"", path)
        if what:
            raise ModelFileError(f"{path}: not an .rkllm model: it is {what}")
    if size < MIN_SIZE:
        raise ModelFileError(f"{path}: {size} bytes, too small to be an .rkllm model (real ones are hundreds of "
                             f"MB): an interrupted download or a placeholder; copy the model again")
    return RkllmFile(path=path, size=size, toolkit_version=version)
