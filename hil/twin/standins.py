"""Stand-ins for the RKLLM demo binaries (llm, imgenc, demo) of each runtime version.

One POSIX sh + awk program (``guest/standin/rkllm-demo``) plays all three binaries; it is
installed the way a vendor preinstalls the SDK demo, ``/opt/rkllm/demo_Linux_aarch64``
with ``lib/librkllmrt.so`` and ``lib/librknnrt.so``, built for the image's runtime version.
The build version is written into each copy (the demo's arguments and menus are compiled
in), while its log lines follow whichever ``librkllmrt.so`` it finds at run time, as the
real binaries do. Models are not part of the image: the suite deploys them over SSH
(``write_bundle`` / ``write_models`` give the host-side trees to deploy).
"""

from __future__ import annotations

import re
from pathlib import Path

from hil.twin import models
from hil.twin.cpio import CpioWriter
from hil.twin.runtimelibs import runtime_library

SOURCE = Path(__file__).resolve().parent / "guest" / "standin" / "rkllm-demo"
INSTALL_DIR = "opt/rkllm/demo_Linux_aarch64"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_PLACEHOLDER = "DEMO_VERSION=@DEMO_VERSION@\n"


def _vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def binaries(runtime_version: str) -> tuple[str, ...]:
    """The demo binaries an SDK release installs: ``llm`` was dropped in 1.2.2."""
    if _vtuple(runtime_version) < (1, 2, 2):
        return ("imgenc", "llm", "demo")
    return ("imgenc", "demo")


def program(runtime_version: str) -> bytes:
    """The stand-in as built for one SDK release."""
    if not _VERSION.match(runtime_version):
        raise ValueError(f"runtime version must look like 1.2.1, got {runtime_version!r}")
    text = SOURCE.read_text(encoding="utf-8")
    if text.count(_PLACEHOLDER) != 1:
        raise RuntimeError(f"{SOURCE}: expected one line {_PLACEHOLDER.strip()!r}")
    return text.replace(_PLACEHOLDER, f"DEMO_VERSION={runtime_version}\n").encode("utf-8")


def bundle_files(runtime_version: str, rknn_runtime: str = "2.3.2") -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mode) of ``demo_Linux_aarch64`` for one runtime version."""
    prog = program(runtime_version)
    files = {name: (prog, 0o755) for name in binaries(runtime_version)}
    files["lib/librkllmrt.so"] = (runtime_library("librkllmrt.so", runtime_version), 0o755)
    files["lib/librknnrt.so"] = (runtime_library("librknnrt.so", rknn_runtime), 0o755)
    return files


def add_files(cpio: CpioWriter, manifest: dict) -> None:
    """Install the SDK demo for the image's runtime, as a vendor image would carry it."""
    for rel, (data, mode) in bundle_files(manifest["rkllm_runtime"], manifest["rknn_runtime"]).items():
        cpio.add_file(f"{INSTALL_DIR}/{rel}", data, mode)


def write_bundle(dest_dir: Path, runtime_version: str, rknn_runtime: str = "2.3.2") -> Path:
    """Write ``<dest>/demo_Linux_aarch64`` on the host, ready to deploy to a board."""
    root = Path(dest_dir) / "demo_Linux_aarch64"
    for rel, (data, mode) in bundle_files(runtime_version, rknn_runtime).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return root


def write_models(dest_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The twin's synthetic models, one directory each (see ``hil.twin.models``)."""
    return models.write_models(dest_dir, names)
