"""What a vendor has on disk after building Rockchip's RKNN tools, for the twin's vision models.

- ``rknn_benchmark`` as ``rknn-toolkit2/rknpu2/examples/rknn_benchmark/build-linux.sh``
  installs it: ``install/rknn_benchmark_Linux/rknn_benchmark`` with ``lib/librknnrt.so``.
- The model zoo's C detection demos as ``rknn_model_zoo/build-linux.sh -t rk3576 -a aarch64
  -d yolov5`` installs them: ``install/rk3576_linux_aarch64/rknn_yolov5_demo/`` holding
  ``rknn_yolov5_demo``, ``lib/librknnrt.so``, ``lib/librga.so`` and ``model/`` with the labels
  (the demo reads ``./model/coco_80_labels_list.txt``, so it runs from its own folder).

One POSIX sh + awk program (``guest/standin/rknn-benchmark``) plays every binary; what it does
depends on the name it runs under.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hil.twin.runtimelibs import runtime_library

SOURCE = Path(__file__).resolve().parent / "guest" / "standin" / "rknn-benchmark"
BENCHMARK_INSTALL = Path("rknpu2") / "install" / "rknn_benchmark_Linux"
ZOO_INSTALL = Path("rknn_model_zoo") / "install" / "rk3576_linux_aarch64"
DETECTION_DEMOS = ("rknn_yolov5_demo", "rknn_yolov8_demo")
COCO_LABELS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
LIBRGA = b"\x7fELF-twin-stand-in\0librga version: 1.10.1_[0]\0"


def labels_file() -> bytes:
    """``coco_80_labels_list.txt``, one label per line, with spaces as the model zoo writes them."""
    return "".join(label.replace("_", " ") + "\n" for label in COCO_LABELS).encode()


def write(sdk_root: Path, rknn_runtime: str = "2.3.2") -> tuple[Path, Path]:
    """``<sdk_root>/rknpu2/install/rknn_benchmark_Linux`` and
    ``<sdk_root>/rknn_model_zoo/install/rk3576_linux_aarch64`` (both replaced); returns them."""
    program = SOURCE.read_bytes()
    librknnrt = runtime_library("librknnrt.so", rknn_runtime)
    bench = Path(sdk_root) / BENCHMARK_INSTALL
    zoo = Path(sdk_root) / ZOO_INSTALL
    for folder in (bench, zoo):
        shutil.rmtree(folder, ignore_errors=True)
    files = {bench / "rknn_benchmark": (program, 0o755), bench / "lib" / "librknnrt.so": (librknnrt, 0o755)}
    for demo in DETECTION_DEMOS:
        files.update({zoo / demo / demo: (program, 0o755), zoo / demo / "lib" / "librknnrt.so": (librknnrt, 0o755),
                      zoo / demo / "lib" / "librga.so": (LIBRGA, 0o755),
                      zoo / demo / "model" / "coco_80_labels_list.txt": (labels_file(), 0o644)})
    for path, (data, mode) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return bench, zoo
