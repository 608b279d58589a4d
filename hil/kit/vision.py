"""The vision model set: RKNN classifiers and detectors from a model zoo folder, as they are.

A vendor's folder holds ``.rknn`` files as rknn-toolkit2 wrote them; each is read with
``hil.rockchip.rknnfile`` (header and trailing JSON only): its target platform, toolkit and
tensors. What a file cannot say comes from Rockchip's published table or from an optional
``vision-models.yaml`` in the folder::

    models:
      my_detector_rk3576:            # the file's stem
        kind: detection              # classification | detection | none (performance only)
        published_fps: 52.0          # the RK3576 figure the FPS limits are drawn from
        source: "our reference board, 2026-11"
        demo: rknn_yolov5_demo       # the model zoo demo that prints its boxes

The published figures are rknn_model_zoo's README v2.3.2 (rockchip.md §6): FPS at the maximum
NPU clock, one core, the model only (``rknn_run``), which is what ``rknn_benchmark`` times.
A file's stem is matched to the table after dropping the platform and precision suffixes the
model zoo's convert scripts and users add (``yolov5s_rk3576``, ``mobilenetv2-12-i8``).
"""

from __future__ import annotations

import re
from pathlib import Path

import attr
import yaml

from hil.kit.bundle import KitError
from hil.rockchip import rknnfile
from hil.rockchip.versions import library_version

YAML_NAME = "vision-models.yaml"
BENCHMARK = "rknn_benchmark_Linux"  # where rknn_benchmark lands on the board, as its build installs it
KINDS = ("classification", "detection")
PUBLISHED_SOURCE = "rknn_model_zoo README v2.3.2, RK3576, one core, max NPU clock"
# model -> (RK3576 FPS, kind of output the suite checks; None: performance only)
PUBLISHED_RK3576_FPS = {
    "mobilenetv2-12": (467.0, "classification"),
    "resnet50-v2-7": (99.0, "classification"),
    "yolov5s_relu": (65.0, "detection"),
    "yolov5n": (112.7, "detection"),
    "yolov5s": (57.5, "detection"),
    "yolov8n": (90.2, "detection"),
    "yolov8s": (40.8, "detection"),
    "yolo11n": (77.9, "detection"),
    "yolox_s": (41.5, "detection"),
    "retinaface_mobile320": (470.5, None),
    "ppocrv4_det": (64.3, None),
    "ppocrv4_rec": (96.8, None),
    "clip_images": (6.7, None),
    "mobilesam_encoder_tiny": (11.9, None),
}
# the model zoo's file names for the same models (examples/*/python/convert.py defaults)
_ALIASES = {"mobilenet_v2": "mobilenetv2-12", "mobilenetv2": "mobilenetv2-12", "resnet50": "resnet50-v2-7",
            "resnet50-v2": "resnet50-v2-7"}
_SUFFIX = re.compile(r"([-_](rk\d{4}[a-z]?|i8|int8|u8|fp16|fp|w8a8|quant|quantized))+$")
_DEMOS = (("yolov5", "rknn_yolov5_demo"), ("yolov8", "rknn_yolov8_demo"), ("yolo11", "rknn_yolo11_demo"),
          ("yolox", "rknn_yolox_demo"))
_YAML_KEYS = ("kind", "published_fps", "source", "demo")


def published_name(stem: str) -> str | None:
    """The published table's name for a file stem, or None."""
    key = _SUFFIX.sub("", stem.lower())
    key = _ALIASES.get(key, key)
    return key if key in PUBLISHED_RK3576_FPS else None


@attr.s(frozen=True, kw_only=True)
class VisionModel:
    """One ``.rknn`` model of the set, with what the suite holds it to."""

    name: str = attr.ib()  # the file's stem
    path: Path = attr.ib(converter=Path)
    file: rknnfile.RknnFile = attr.ib(repr=False)
    kind: str | None = attr.ib()  # classification, detection, or None (performance only)
    published_fps: float | None = attr.ib(default=None)
    published_source: str | None = attr.ib(default=None)
    demo: str | None = attr.ib(default=None)  # the model zoo demo for a detector's boxes

    @property
    def platforms(self) -> list[str]:
        """Upper case, as the runtime names them (``RK3576``)."""
        return [p.upper() for p in self.file.target_platform]

    @property
    def rel(self) -> str:
        return f"models/{self.path.name}"


def _entries(folder: Path) -> dict:
    path = folder / YAML_NAME
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise KitError(f"{path}: not valid YAML ({e})") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise KitError(f"{path}: expected 'models:' mapping a .rknn file's stem to kind, published_fps, source, demo")
    for stem, entry in models.items():
        if not isinstance(entry, dict):
            raise KitError(f"{path}: models.{stem} must be a mapping ({', '.join(_YAML_KEYS)})")
        unknown = set(entry) - set(_YAML_KEYS)
        if unknown:
            raise KitError(f"{path}: models.{stem}: unknown key {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(_YAML_KEYS)})")
        kind = entry.get("kind")
        if kind is not None and kind not in (*KINDS, "none"):
            raise KitError(f"{path}: models.{stem}.kind must be classification, detection or none, not {kind!r}")
        fps = entry.get("published_fps")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
            raise KitError(f"{path}: models.{stem}.published_fps must be a number of frames per second above 0, "
                           f"not {fps!r}")
        if not (folder / f"{stem}.rknn").is_file():
            raise KitError(f"{path}: models.{stem} names no file: there is no {stem}.rknn in {folder}")
    return models


def read_model(path: Path, entry: dict | None = None) -> VisionModel:
    """One model from its file (and its YAML entry); a file that is no usable RKNN model is a
    KitError naming it and the cause."""
    path = Path(path)
    try:
        found = rknnfile.read_rknn(path)
    except (rknnfile.ModelFileError, OSError) as e:
        raise KitError(str(e)) from e
    if found.format != "rknn":
        raise KitError(f"{path} is an RKNN3 (RKNX) model: RK3576's librknnrt 2.x loads RKNN containers; convert it "
                       f"with rknn-toolkit2")
    if found.encrypted:
        raise KitError(f"{path} is an encrypted RKNN model (CYPTRKNN): rknn_benchmark cannot load it; "
                       f"qualify the unencrypted build")
    entry = entry or {}
    table = published_name(path.stem)
    fps, kind = PUBLISHED_RK3576_FPS[table] if table else (None, None)
    source = f"{PUBLISHED_SOURCE}: {table} {fps:g} FPS" if table else None
    if entry.get("published_fps") is not None:
        fps = float(entry["published_fps"])
        source = entry.get("source") or f"{YAML_NAME}: {path.stem} {fps:g} FPS"
    if "kind" in entry:
        kind = None if entry["kind"] in (None, "none") else entry["kind"]
    demo = entry.get("demo") or next((d for prefix, d in _DEMOS if path.stem.lower().startswith(prefix)), None)
    if kind == "detection" and demo is None:
        raise KitError(f"{path}: a detector's boxes come from its model zoo demo, and none is known for "
                       f"{path.stem}: name it (demo: rknn_yolov5_demo) in {path.parent / YAML_NAME}")
    return VisionModel(name=path.stem, path=path, file=found, kind=kind, published_fps=fps,
                       published_source=source, demo=demo)


def load_models(folder: Path | str) -> list[VisionModel]:
    """Every ``.rknn`` of ``folder`` (not its subfolders), sorted by name."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise KitError(f"--vision-models {folder}: not a folder (a folder of .rknn models, with an optional "
                       f"{YAML_NAME})")
    entries = _entries(folder)
    paths = sorted(folder.glob("*.rknn"))
    if not paths:
        raise KitError(f"--vision-models {folder}: no .rknn file in it")
    return [read_model(p, entries.get(p.stem)) for p in paths]


@attr.s(frozen=True, kw_only=True)
class VisionKit:
    """What the vision tests deploy: ``rknn_benchmark`` with its librknnrt, the model zoo's
    detection demos, and the models."""

    benchmark_dir: Path = attr.ib(converter=Path)  # rknn_benchmark_Linux: rknn_benchmark + lib/librknnrt.so
    zoo_dir: Path | None = attr.ib()  # install/rk3576_linux_aarch64 with rknn_<model>_demo/ folders
    models: tuple[VisionModel, ...] = attr.ib(converter=tuple)
    rknn_runtime: str = attr.ib()  # the librknnrt version rknn_benchmark ships with

    def model(self, name: str) -> VisionModel:
        for m in self.models:
            if m.name == name:
                return m
        raise KitError(f"no vision model {name!r} (models: {', '.join(m.name for m in self.models)})")

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def demo_dir(self, demo: str) -> Path | None:
        return self.zoo_dir / demo if self.zoo_dir is not None and (self.zoo_dir / demo / demo).is_file() else None

    def files(self) -> dict[str, Path]:
        """Relative path on the board (under the vision deploy folder) -> local file."""
        out = {f"{BENCHMARK}/{p.relative_to(self.benchmark_dir).as_posix()}": p
               for p in sorted(self.benchmark_dir.rglob("*")) if p.is_file()}
        for demo in sorted({m.demo for m in self.models if m.kind == "detection" and m.demo}):
            local = self.demo_dir(demo)
            if local is not None:
                out.update({f"zoo/{demo}/{p.relative_to(local).as_posix()}": p
                            for p in sorted(local.rglob("*")) if p.is_file()})
        out.update({m.rel: m.path for m in self.models})
        return out



def load_kit(benchmark_dir: Path | str, models_dir: Path | str, zoo_dir: Path | str | None = None) -> VisionKit:
    """The tools and the models; a folder that is not what it should be is a KitError naming it."""
    benchmark_dir = Path(benchmark_dir).expanduser()
    if not (benchmark_dir / "rknn_benchmark").is_file():
        raise KitError(f"--rknn-benchmark {benchmark_dir}: no rknn_benchmark in it (pass the folder rknpu2's "
                       f"examples/rknn_benchmark/build-linux.sh installs: install/{BENCHMARK})")
    lib = benchmark_dir / "lib" / "librknnrt.so"
    found = library_version(lib) if lib.is_file() else None
    if found is None:
        raise KitError(f"--rknn-benchmark {benchmark_dir}: no lib/librknnrt.so with a version in it (the build "
                       f"installs the librknnrt it was built against beside the tool)")
    zoo = Path(zoo_dir).expanduser() if zoo_dir is not None else None
    if zoo is not None and not zoo.is_dir():
        raise KitError(f"--zoo-demos {zoo}: not a folder (the model zoo's install/rk3576_linux_aarch64)")
    models = load_models(models_dir)
    kit = VisionKit(benchmark_dir=benchmark_dir, zoo_dir=zoo, models=models, rknn_runtime=found.version)
    missing = sorted({m.demo for m in models if m.kind == "detection" and kit.demo_dir(m.demo) is None})
    if missing:
        where = f"in --zoo-demos {zoo}" if zoo is not None else "(no --zoo-demos given)"
        raise KitError(f"the detectors need the model zoo demos {', '.join(missing)}, not found {where}: build them "
                       f"with rknn_model_zoo's build-linux.sh -t rk3576 -a aarch64 -d yolov5 and pass its "
                       f"install/rk3576_linux_aarch64")
    return kit
