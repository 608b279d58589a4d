"""What a vendor engineer has on disk after following Rockchip's guide, for the twin: the SDK's
demo build where the SDK installs it, a folder of models in the model zoo's names, and the
RKNN tools (rknn_benchmark, the model zoo's detection demos) with a folder of vision models."""

from __future__ import annotations

import shutil
from pathlib import Path

from hil.twin import models, standins, vision, visionsdk

RUNTIME = "1.2.1"  # the runtime of the reference image, twin-good
RKNN_RUNTIME = "2.3.2"
SDK_INSTALL = Path("deploy") / "install"  # where the SDK's build-linux.sh installs demo_Linux_aarch64


def write_sdk(sdk_root: Path, runtime: str = RUNTIME, rknn_runtime: str = RKNN_RUNTIME) -> Path:
    """``<sdk_root>/deploy/install/demo_Linux_aarch64`` (replacing it); returns that folder."""
    install = Path(sdk_root) / SDK_INSTALL
    shutil.rmtree(install, ignore_errors=True)
    return standins.write_bundle(install, runtime, rknn_runtime)


def write(twin_dir: Path, runtime: str = RUNTIME, rknn_runtime: str = RKNN_RUNTIME) -> tuple[Path, Path]:
    """The twin's SDK build under ``<twin_dir>/sdk`` and its models under ``<twin_dir>/models``,
    its RKNN tools under ``sdk/`` and vision models under ``<twin_dir>/vision-models`` (all
    replaced); returns (demo build, models folder)."""
    demo = write_sdk(Path(twin_dir) / "sdk", runtime, rknn_runtime)
    folder = Path(twin_dir) / "models"
    shutil.rmtree(folder, ignore_errors=True)
    models.write_models(folder)
    visionsdk.write(Path(twin_dir) / "sdk", rknn_runtime)
    vision_models = Path(twin_dir) / "vision-models"
    shutil.rmtree(vision_models, ignore_errors=True)
    vision.write(vision_models)
    return demo, folder


def built(twin_dir: Path) -> bool:
    """Whether every tree ``write`` makes is there."""
    twin_dir = Path(twin_dir)
    return ((twin_dir / "sdk" / SDK_INSTALL / "demo_Linux_aarch64" / "demo").exists()
            and (twin_dir / "models").is_dir() and (twin_dir / "vision-models").is_dir()
            and (twin_dir / "sdk" / visionsdk.BENCHMARK_INSTALL / "rknn_benchmark").exists())
