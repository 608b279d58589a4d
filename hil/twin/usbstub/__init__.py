"""The stand-in libusb that lets Debian's real rkdeveloptool reach the twin's boards.

``libusb-stub.c`` implements the libusb-1.0 functions the tool imports and forwards its
USB transfers to each board's Rockusb server (:mod:`hil.twin.rockusb`); the framed
protocol is documented in both files. :func:`build` compiles it once per source into
the twin cache as ``libusb-1.0.so.0``; :func:`tool_env` is the environment of the
tool's process only: that folder first on ``LD_LIBRARY_PATH`` and ``TWIN_ROCKUSB``.
The library is never installed system-wide and never goes into the caller's own
environment, so nothing else on the host loads it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from hil.paths import twin_dir

SOURCE = Path(__file__).resolve().parent / "libusb-stub.c"
LIBNAME = "libusb-1.0.so.0"  # the soname rkdeveloptool's binary asks the loader for
CFLAGS = ["-shared", "-fPIC", "-Wall", "-Werror", "-O2", "-fvisibility=hidden", f"-Wl,-soname,{LIBNAME}"]
ENV_ENDPOINTS = "TWIN_ROCKUSB"
ENV_TIMEOUT = "TWIN_ROCKUSB_TIMEOUT_MS"


class StubBuildError(RuntimeError):
    """The stub could not be compiled; the message has the compiler's words."""


def default_dir() -> Path:
    return twin_dir() / "usbstub"


def _digest(cc: str) -> str:
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    h = hashlib.sha256(SOURCE.read_bytes())
    h.update("\0".join(CFLAGS).encode() + b"\0")
    h.update(version.splitlines()[0].encode() if version else b"")
    return h.hexdigest()


def build(dest_dir: Path | None = None) -> Path:
    """Compile the stub into ``dest_dir`` (default: the twin cache) when its source changed.

    Returns the library's path; its folder is what goes first on ``LD_LIBRARY_PATH``.
    """
    dest = Path(dest_dir) if dest_dir is not None else default_dir()
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if not cc:
        raise StubBuildError("no C compiler (gcc) on the host: install gcc (scripts/setup)")
    lib, stamp = dest / LIBNAME, dest / f"{LIBNAME}.sha256"
    digest = _digest(cc)
    if lib.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return lib
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix="build-") as tmp:
        out = Path(tmp) / LIBNAME
        proc = subprocess.run([cc, *CFLAGS, "-o", str(out), str(SOURCE)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StubBuildError(f"compiling {SOURCE.name} failed:\n{(proc.stdout + proc.stderr).strip()[-4000:]}")
        out.replace(lib)  # atomic: a tool starting now sees the old or the new library
    partial = stamp.with_name(stamp.name + ".partial")
    partial.write_text(digest + "\n")
    partial.replace(stamp)
    return lib


def tool_env(endpoints: Iterable[str], lib: Path | None = None, base: Mapping[str, str] | None = None,
             timeout_ms: int | None = None) -> dict[str, str]:
    """The environment for one rkdeveloptool process: the stub first, the boards' endpoints.

    ``endpoints`` are ``host:port`` of Rockusb servers, in the order the tool lists them.
    """
    lib = Path(lib) if lib is not None else build()
    env = dict(os.environ if base is None else base)
    rest = env.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = str(lib.parent) + (os.pathsep + rest if rest else "")
    env[ENV_ENDPOINTS] = ",".join(endpoints)
    if timeout_ms is not None:
        env[ENV_TIMEOUT] = str(int(timeout_ms))
    return env
