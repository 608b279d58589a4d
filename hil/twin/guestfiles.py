"""Files that make one firmware image what its manifest says it is.

Every image shares the base rootfs; this adds the per-image layer: identity
(``/etc/os-release``, ``/etc/build-info``), the settings the guest scripts read
(``/etc/twin/image.env``) and the vendor runtime libraries with their version strings
(stand-ins from ``hil.twin.runtimelibs``).
"""

from __future__ import annotations

import shlex

from hil.twin import standins, surface
from hil.twin.cpio import CpioWriter
from hil.twin.runtimelibs import runtime_library


def _env(values: dict) -> bytes:
    """KEY=value lines as in /etc/os-release: values with shell-special characters in double quotes."""
    lines = []
    for key, value in values.items():
        text = str(value)
        if text and shlex.quote(text) == text:
            lines.append(f"{key}={text}\n")
        else:
            escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
            lines.append(f'{key}="{escaped}"\n')
    return "".join(lines).encode()


def image_env(manifest: dict) -> dict:
    return {
        "TWIN_IMAGE": manifest["name"],
        "TWIN_RKNPU_DRIVER": manifest["rknpu_driver"],
        "TWIN_RKLLM_RUNTIME": manifest["rkllm_runtime"],
        "TWIN_RKNN_RUNTIME": manifest["rknn_runtime"],
        "TWIN_NPU_FREQ_CAP": manifest.get("npu_freq_cap_hz") or "",
        "TWIN_BOOT_FAULT": manifest.get("boot_fault") or "",
    }


def add_image_files(cpio: CpioWriter, manifest: dict) -> None:
    cpio.add_file("etc/twin/image.env", _env(image_env(manifest)))
    cpio.add_file("etc/os-release", _env(manifest["os_release"]))
    build = {f"BUILD_{k.upper()}": v for k, v in manifest["build"].items()}
    build["BUILD_IMAGE"] = manifest["name"]
    cpio.add_file("etc/build-info", _env(build))
    cpio.add_file("usr/lib/librknnrt.so", runtime_library("librknnrt.so", manifest["rknn_runtime"]))
    cpio.add_file("usr/lib/librkllmrt.so", runtime_library("librkllmrt.so", manifest["rkllm_runtime"]))
    surface.add_files(cpio, manifest)
    standins.add_files(cpio, manifest)
