"""Where the project keeps things outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES_DIR = REPO / "images"
FIRMWARE_DIR = IMAGES_DIR / "firmware"


def cache_dir() -> Path:
    """Build cache (guest packages, twin images): $HIL_CACHE, else the XDG cache."""
    if os.environ.get("HIL_CACHE"):
        return Path(os.environ["HIL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rk3576-hil"


def twin_dir() -> Path:
    return cache_dir() / "twin"


def bench_dir() -> Path:
    """State of a running bench (pids, ports, disks): $HIL_BENCH_DIR, else under the cache."""
    if os.environ.get("HIL_BENCH_DIR"):
        return Path(os.environ["HIL_BENCH_DIR"])
    return cache_dir() / "bench"


def twin_models_dir() -> Path:
    """The twin's model folder (synthetic models in the model zoo's names), written by the build."""
    return twin_dir() / "models"


def twin_demo_dir() -> Path:
    """The twin's SDK demo build, laid out as the SDK installs it, written by the build."""
    return twin_dir() / "sdk" / "deploy" / "install" / "demo_Linux_aarch64"


def twin_vision_dirs() -> tuple[Path, Path, Path]:
    """The twin's vision models, its rknn_benchmark build and its model zoo demos, written by the build."""
    sdk = twin_dir() / "sdk"
    return (twin_dir() / "vision-models", sdk / "rknpu2" / "install" / "rknn_benchmark_Linux",
            sdk / "rknn_model_zoo" / "install" / "rk3576_linux_aarch64")
