"""Firmware image manifests (``images/firmware/<name>.yaml``).

Manifests live in ``images/firmware/``. A manifest says what an image claims to be: OS release, build info, kernel series,
RKNPU driver and runtime versions, and any fault built into it. The twin builder turns
it into a bootable image; the suite compares a flashed board against it.
"""

from __future__ import annotations

import re
from pathlib import Path

import attr
import yaml

from hil.paths import FIRMWARE_DIR

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
BOOT_FAULTS = (None, "kernel-panic", "no-login")


class ManifestError(ValueError):
    """An image manifest is missing, unreadable or inconsistent."""


def _version(_inst, att, value):
    if not isinstance(value, str) or not _VERSION.match(value):
        raise ManifestError(f"{att.name} must be a version like 0.9.8, got {value!r}")


@attr.s(frozen=True, kw_only=True)
class ImageManifest:
    name = attr.ib(validator=attr.validators.instance_of(str))
    summary = attr.ib(default="")
    os_release = attr.ib(factory=dict)
    build = attr.ib(factory=dict)
    kernel = attr.ib(factory=dict)
    rknpu_driver = attr.ib(validator=_version)
    rkllm_runtime = attr.ib(validator=_version)
    rknn_runtime = attr.ib(validator=_version)
    npu_freq_cap_hz = attr.ib(default=None)
    boot_fault = attr.ib(default=None)
    file = attr.ib(default=None)  # the image file, relative to the manifest; none: built by `hil twin build`
    path = attr.ib(default=None, eq=False)

    def __attrs_post_init__(self):
        if self.boot_fault not in BOOT_FAULTS:
            raise ManifestError(f"boot_fault must be one of {BOOT_FAULTS}, got {self.boot_fault!r}")
        if self.npu_freq_cap_hz is not None and not isinstance(self.npu_freq_cap_hz, int):
            raise ManifestError(f"npu_freq_cap_hz must be an integer (Hz), got {self.npu_freq_cap_hz!r}")
        if "id" not in self.build:
            raise ManifestError("build.id is required")

    def as_dict(self) -> dict:
        return attr.asdict(self, filter=lambda a, _v: a.name != "path")


def image_file(manifest: ImageManifest) -> Path:
    """The file to flash for ``manifest``, with an error that says how to get it when missing."""
    from hil.paths import twin_dir

    if manifest.file:
        path = Path(manifest.file)
        if not path.is_absolute() and manifest.path is not None:
            path = Path(manifest.path).parent / path
        hint = f"put the image there or fix 'file:' in {manifest.path}"
    else:
        path = twin_dir() / "images" / f"{manifest.name}.img"
        hint = "build the twin's images with 'hil twin build'"
    if not path.is_file():
        raise ManifestError(f"image file for {manifest.name!r} not found at {path}: {hint}")
    return path


def available(directory: Path = FIRMWARE_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def load(name: str, directory: Path = FIRMWARE_DIR) -> ImageManifest:
    """Load the manifest of an image by name, with an error that lists the known images."""
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available(directory)) or "none"
        raise ManifestError(f"unknown image {name!r}: no {path.name} in {directory} (known images: {known})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a mapping at top level")
    if data.get("name") != name:
        raise ManifestError(f"{path}: name {data.get('name')!r} does not match the file name {name!r}")
    try:
        return ImageManifest(path=path, **data)
    except TypeError as e:
        raise ManifestError(f"{path}: {e}") from e
