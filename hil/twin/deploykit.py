"""The twin's models directory: stand-in demo build plus synthetic models (see hil.kit.bundle)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from hil.kit.bundle import DEMO_DIR, RUNTIME_DIR
from hil.twin import models, standins

RUNTIME = "1.2.1"  # the runtime of the reference image, twin-good
RKNN_RUNTIME = "2.3.2"


def write(dest: Path, runtime: str = RUNTIME, rknn_runtime: str = RKNN_RUNTIME) -> Path:
    """Write a complete models directory for the twin at ``dest`` (replacing it)."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    rt = dest / RUNTIME_DIR
    standins.write_bundle(rt, runtime, rknn_runtime)
    vt = tuple(int(x) for x in runtime.split("."))
    spec = {
        "rkllm_runtime": runtime,
        "rknn_runtime": rknn_runtime,
        "demo_version": runtime,
        # the 1.2.0/1.2.1 demos copy the encoder output into float img_vec[196 * 1536]
        "demo_embed_size": 1536 if vt < (1, 2, 2) else None,
    }
    (rt / "runtime.yaml").write_text(
        "# The twin's demo build (stand-ins for the SDK's demo_Linux_aarch64).\n" + yaml.safe_dump(spec, sort_keys=False))
    assert (rt / DEMO_DIR / "demo").is_file()
    models.write_models(dest)
    return dest
