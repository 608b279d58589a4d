"""Synthetic RKNN vision models for the virtual bench: the model zoo's classifiers and detectors
as real ``.rknn`` containers, with what the ``rknn_benchmark`` and detection-demo stand-ins
need to answer like the real models would.

A file is the real container (model-files.md §1.1, the same writer as the twin's vision
encoders): ``RKNN`` + 4 zero bytes, u64 version 6, u64 blob size, 40 zero bytes, the blob, u64
JSON size, the trailing JSON with ``version``, ``target_platform``, ``norm_tensor`` and
``graph``, which is all the suite reads. The blob starts like a FlatBuffer (identifier
``RKNN`` at bytes 4..7) and then holds, where the real compiled graph would be, the
stand-ins' private section, which the suite never reads::

    <newline>RKNN-TWIN
    name=yolov5s_rk3576
    kind=detection                  or classification
    published_fps=57.5              rknn_model_zoo README v2.3.2, RK3576, single core
    multicore=1.45                  FPS factor on both cores (core mask 3)
    weight_size=... internal_size=... dma_size=...   bytes, as RKNN_QUERY_MEM_SIZE gives them
    input=images<TAB>1,640,640,3<TAB>INT8<TAB>NHWC<TAB>-128<TAB>0.003922   as rknn_query prints it
    output=output0<TAB>1,255,80,80<TAB>INT8<TAB>NCHW<TAB>-128<TAB>0.003922
    @<TAB><sha256 of a picture><TAB><answer>    "-" for no picture (zero-filled input)
    end

An answer is ``class:score,...`` (Top-5 of output 0, classes of ImageNet) for a classifier and
``label:left,top,right,bottom:score;...`` (boxes in the picture's pixels, COCO labels) for a
detector, empty for nothing detected. The filler up to the file's size follows.

Speeds are Rockchip's published RK3576 figures (rockchip.md §6, rknn_model_zoo README
v2.3.2: FPS at the maximum NPU clock, single core, model only); the stand-ins scale them by
the NPU clock and core mask. Memory sizes are the twin's: the weight size is most of the
file, as a real model's weights are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import attr

from hil.kit.pictures import PICTURES_DIR
from hil.twin.models import rknn_container, rknn_meta

MAGIC = "RKNN-TWIN"
SECTION_LIMIT = 64 * 1024  # the stand-ins read this much of the file's start
_HEAD = 16  # root offset, identifier "RKNN", u64 version


@attr.s(frozen=True)
class TensorSpec:
    name: str = attr.ib()
    dims: tuple[int, ...] = attr.ib(converter=tuple)  # as rknn_query prints them (NHWC inputs)
    type: str = attr.ib(default="INT8")
    fmt: str = attr.ib(default="NCHW")
    zp: int = attr.ib(default=-128)
    scale: float = attr.ib(default=0.003922)

    @property
    def onnx_shape(self) -> list[int]:
        """The shape the toolkit's trailing JSON keeps (NCHW for an NHWC input)."""
        d = list(self.dims)
        return [d[0], d[3], d[1], d[2]] if self.fmt == "NHWC" and len(d) == 4 else d

    def line(self) -> str:
        return "\t".join((self.name, ",".join(map(str, self.dims)), self.type, self.fmt, str(self.zp),
                          f"{self.scale:g}"))


@attr.s(frozen=True, kw_only=True)
class VisionSpec:
    """One twin vision model as the model zoo converts it for RK3576 (INT8)."""

    name: str = attr.ib()
    kind: str = attr.ib(validator=attr.validators.in_({"classification", "detection"}))
    published_fps: float = attr.ib()
    multicore: float = attr.ib()
    inputs: tuple[TensorSpec, ...] = attr.ib(converter=tuple)
    outputs: tuple[TensorSpec, ...] = attr.ib(converter=tuple)
    file_kib: int = attr.ib()
    internal_size: int = attr.ib()
    target_platform: str = attr.ib(default="RK3576")
    toolkit_version: str = attr.ib(default="2.3.2")
    answers: dict = attr.ib(factory=dict)  # picture file (or "-") -> answer text

    @property
    def weight_size(self) -> int:
        return self.file_kib * 1024 * 23 // 25  # the weights are most of a real file

    @property
    def dma_size(self) -> int:
        io = sum(_elements(t.dims) for t in (*self.inputs, *self.outputs))
        return self.weight_size + self.internal_size + io

    def evolve(self, **changes) -> "VisionSpec":
        return attr.evolve(self, **changes)


def _elements(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _top5(*pairs) -> str:
    return ",".join(f"{c}:{s:.6f}" for c, s in pairs)


def _boxes(*found) -> str:
    return ";".join(f"{label}:{l},{t},{r},{b}:{s:.3f}" for label, (l, t, r, b), s in found)


_CLS_IN = (TensorSpec("input", (1, 224, 224, 3), fmt="NHWC", zp=-14, scale=0.018658),)
# ImageNet classes: 281 tabby, 285 Egyptian cat, 282 tiger cat, 287 lynx, 904 window screen,
# 660 mobile home, 425 barn, 449 boathouse, 500 cliff dwelling, 698 palace, 417 balloon,
# 722 ping-pong ball, 971 bubble, 852 tennis ball, 409 analog clock, 918 crossword puzzle,
# 599 honeycomb, 741 prayer rug, 490 chain mail, 916 web site, 922 menu, 549 envelope, 446 binder.
VISION_MODELS = {
    m.name: m
    for m in (
        VisionSpec(
            name="mobilenetv2-12_rk3576", kind="classification", published_fps=467.0, multicore=1.15,
            inputs=_CLS_IN, outputs=(TensorSpec("output", (1, 1000), fmt="UNDEFINED", zp=-57, scale=0.142551),),
            file_kib=352, internal_size=1_204_224,
            answers={
                "cat.png": _top5((281, 0.742188), (285, 0.117188), (282, 0.082031), (287, 0.011719), (904, 0.003906)),
                "house.png": _top5((660, 0.402344), (425, 0.195312), (449, 0.113281), (500, 0.062500), (698, 0.031250)),
                "red-circle.png": _top5((417, 0.511719), (722, 0.173828), (971, 0.085938), (852, 0.044922),
                                        (409, 0.023438)),
                "chessboard.png": _top5((918, 0.458984), (599, 0.150391), (741, 0.091797), (490, 0.048828),
                                        (904, 0.029297)),
                "text-rk3576.png": _top5((916, 0.603516), (922, 0.105469), (549, 0.058594), (446, 0.035156),
                                         (918, 0.019531)),
                "-": _top5((904, 0.066406), (599, 0.054688), (918, 0.042969), (490, 0.031250), (741, 0.027344)),
            }),
        VisionSpec(
            name="resnet50-v2-7_rk3576", kind="classification", published_fps=99.0, multicore=1.55,
            inputs=(TensorSpec("data", (1, 224, 224, 3), fmt="NHWC", zp=-14, scale=0.018658),),
            outputs=(TensorSpec("resnetv24_dense0_fwd", (1, 1000), fmt="UNDEFINED", zp=-69, scale=0.158717),),
            file_kib=896, internal_size=1_605_632,
            answers={
                "cat.png": _top5((281, 0.812500), (282, 0.093750), (285, 0.062500), (287, 0.007812), (904, 0.003906)),
                "house.png": _top5((660, 0.468750), (449, 0.171875), (425, 0.132812), (698, 0.046875), (500, 0.039062)),
                "red-circle.png": _top5((417, 0.593750), (722, 0.148438), (852, 0.070312), (971, 0.062500),
                                        (409, 0.015625)),
                "chessboard.png": _top5((918, 0.523438), (599, 0.125000), (490, 0.078125), (741, 0.070312),
                                        (904, 0.023438)),
                "text-rk3576.png": _top5((916, 0.687500), (922, 0.085938), (446, 0.046875), (549, 0.039062),
                                         (918, 0.015625)),
                "-": _top5((904, 0.078125), (918, 0.054688), (599, 0.046875), (741, 0.031250), (490, 0.023438)),
            }),
        VisionSpec(
            name="yolov5s_rk3576", kind="detection", published_fps=57.5, multicore=1.45,
            inputs=(TensorSpec("images", (1, 640, 640, 3), fmt="NHWC"),),
            outputs=(TensorSpec("output0", (1, 255, 80, 80), zp=-128, scale=0.003922),
                     TensorSpec("286", (1, 255, 40, 40), zp=-128, scale=0.003922),
                     TensorSpec("288", (1, 255, 20, 20), zp=-128, scale=0.003922)),
            file_kib=640, internal_size=9_830_400,
            answers={
                "cat.png": _boxes(("cat", (41, 34, 351, 358), 0.912)),
                "red-circle.png": _boxes(("sports ball", (96, 97, 296, 295), 0.684)),
                "house.png": _boxes(("clock", (271, 18, 366, 110), 0.312)),
                "chessboard.png": "", "text-rk3576.png": "", "-": "",
            }),
        VisionSpec(
            name="yolov8n_rk3576", kind="detection", published_fps=90.2, multicore=1.3,
            inputs=(TensorSpec("images", (1, 640, 640, 3), fmt="NHWC"),),
            outputs=tuple(TensorSpec(name, (1, ch, size, size), zp=zp, scale=scale)
                          for size, names in ((80, ("318", "onnx::ReduceSum_326", "331")),
                                              (40, ("338", "onnx::ReduceSum_346", "350")),
                                              (20, ("357", "onnx::ReduceSum_365", "369")))
                          for name, ch, zp, scale in zip(names, (64, 80, 1), (-56, -128, -128),
                                                         (0.110522, 0.003683, 0.003922))),
            file_kib=448, internal_size=5_734_400,
            answers={
                "cat.png": _boxes(("cat", (38, 30, 354, 362), 0.887)),
                "red-circle.png": _boxes(("sports ball", (95, 95, 297, 297), 0.741)),
                "house.png": "", "chessboard.png": "", "text-rk3576.png": "", "-": "",
            }),
    )
}
# A detector converted for the RK3588 (three NPU cores), for the platform refusal.
FOREIGN = VISION_MODELS["yolov5s_rk3576"].evolve(name="yolov5s_rk3588", target_platform="RK3588",
                                                 published_fps=48.4)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def section(spec: VisionSpec, pictures_dir: Path = PICTURES_DIR) -> bytes:
    """The private section the stand-ins read (see the module docstring)."""
    lines = [MAGIC, f"name={spec.name}", f"kind={spec.kind}", f"published_fps={spec.published_fps:g}",
             f"multicore={spec.multicore:g}", f"weight_size={spec.weight_size}",
             f"internal_size={spec.internal_size}", f"dma_size={spec.dma_size}",
             *(f"input={t.line()}" for t in spec.inputs), *(f"output={t.line()}" for t in spec.outputs)]
    for picture, answer in spec.answers.items():
        key = "-" if picture == "-" else sha256_file(Path(pictures_dir) / picture)
        lines.append(f"@\t{key}\t{answer}")
    data = ("\n" + "\n".join(lines) + "\nend\n").encode("ascii")
    if 64 + _HEAD + len(data) > SECTION_LIMIT:
        raise ValueError(f"{spec.name}: the private section ({len(data)} bytes) exceeds {SECTION_LIMIT}")
    return data


def rknn_json(spec: VisionSpec) -> dict:
    """The trailing JSON in rknn-toolkit2's keys (an INT8 build)."""
    int8 = {"qnt_method": "layer", "qnt_type": "asymmetric_affine", "vx_type": "int8"}
    return rknn_meta([(t.name, t.onnx_shape) for t in spec.inputs], [(t.name, t.onnx_shape) for t in spec.outputs],
                     platform=spec.target_platform, version=spec.toolkit_version, dtype=int8)


def rknn_bytes(spec: VisionSpec, pictures_dir: Path = PICTURES_DIR) -> bytes:
    return rknn_container(rknn_json(spec), spec.file_kib * 1024, spec.name + ".rknn", section(spec, pictures_dir))


def write(dest_dir: Path, names=None, pictures_dir: Path = PICTURES_DIR) -> list[Path]:
    """Write the given twin vision models (all of ``VISION_MODELS`` by default, or specs) as
    ``<name>.rknn`` into one folder; returns their paths."""
    directory = Path(dest_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in names or list(VISION_MODELS):
        spec = VISION_MODELS[item] if isinstance(item, str) else item
        path = directory / f"{spec.name}.rknn"
        path.write_bytes(rknn_bytes(spec, pictures_dir))
        paths.append(path)
    return paths
