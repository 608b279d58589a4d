"""The RKNN vision stand-ins (rknn_benchmark and the model zoo detection demos), run under the
host's busybox (the guest's shell) in a fake root.

``visionsdk.write`` lays out the SDK's install folders, ``vision.write`` the twin's vision
models; ``TWIN_ROOT`` points the stand-in's board paths (debugfs, /run/twin/fault,
/usr/libexec/twin/npu) at a temporary directory and ``TWIN_TIMESCALE=0.01`` shortens the waits
while the printed figures stay at board values. Expectations come from ``hil.twin.vision``'s
specs and the real tools' formats (``hil.rockchip.rknn_benchmark``), not from the stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess

import attr
import pytest
from PIL import Image

from hil.kit.pictures import PICTURES_DIR
from hil.rockchip import rknn_benchmark
from hil.twin import vision, visionsdk
from selftest.unit.test_standins import Board as StandinBoard

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")

TIMESCALE = "0.01"
RUNTIME = "2.3.2 (429f97ae6b@2025-04-09T09:09:27)"  # hil.twin.runtimelibs.RKNN_BUILD
MOBILENET, RESNET, YOLOV5, YOLOV8 = "mobilenetv2-12_rk3576", "resnet50-v2-7_rk3576", "yolov5s_rk3576", "yolov8n_rk3576"
CLASSIFIERS = (MOBILENET, RESNET)
DETECTORS = {YOLOV5: "rknn_yolov5_demo", YOLOV8: "rknn_yolov8_demo"}
LOOP = re.compile(r"^ {0,3}\d+: Elapse Time = \d+\.\d\dms, FPS = \d+\.\d\d$")
BOX = re.compile(r"^(.+) @ \((-?\d+) (-?\d+) (-?\d+) (-?\d+)\) (\d+\.\d{3})$")
CORE_MASK_ERROR = re.compile(
    r"^E RKNN: \[\d\d:\d\d:\d\d\.\d{3}\] rknn_set_core_mask: unavailable core mask found for current platform! "
    r"max core mask = 3$")


@attr.s(frozen=True)
class Kit:
    root = attr.ib()
    bench = attr.ib()  # rknpu2/install/rknn_benchmark_Linux
    zoo = attr.ib()  # rknn_model_zoo/install/rk3576_linux_aarch64
    models = attr.ib()

    def model(self, name):
        return self.models / f"{name}.rknn"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision-standins")
    bench, zoo = visionsdk.write(root / "sdk")
    models = root / "models"
    vision.write(models)
    vision.write(models, [vision.FOREIGN])
    data = vision.rknn_bytes(vision.VISION_MODELS[MOBILENET])
    (models / "corrupt.rknn").write_bytes(data[4096:])  # a copy that lost its start
    return Kit(root, bench, zoo, models)


class Board(StandinBoard):
    """A fake board root (what TWIN_ROOT points at), as for the RKLLM stand-ins."""

    @property
    def npu_calls(self):
        log = self.root / "npu.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def board(tmp_path):
    b = Board(tmp_path / "root")
    b.driver("0.9.8")
    b.write("proc/cmdline", "console=ttyAMA0,115200 rdinit=/init panic=0 loglevel=7\n")
    (b.root / "run/twin/fault").mkdir(parents=True)
    b.npu()
    return b


@attr.s(frozen=True)
class Result:
    rc = attr.ib()
    out = attr.ib()
    err = attr.ib()

    @property
    def lines(self):
        return self.out.splitlines()

    @property
    def parsed(self):
        return rknn_benchmark.parse(self.out + self.err)


def _run(program, args, cwd, board, lib, tmp_dir):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TWIN_ROOT": str(board.root),
        "TWIN_TIMESCALE": TIMESCALE,
        "LD_LIBRARY_PATH": str(lib),
        "TMPDIR": str(tmp_dir),
    }
    p = subprocess.run([BUSYBOX, "sh", str(program), *map(str, args)], capture_output=True, cwd=cwd, env=env,
                       timeout=60, check=False)
    return Result(p.returncode if p.returncode >= 0 else 128 - p.returncode, p.stdout.decode(), p.stderr.decode())


def bench(kit, board, *args, lib=None):
    """``rknn_benchmark ARGS`` as the suite runs it: from a scratch folder, LD_LIBRARY_PATH at its lib/."""
    scratch = board.root.parent / "out"
    scratch.mkdir(exist_ok=True)
    return _run(kit.bench / "rknn_benchmark", args, scratch, board, lib or kit.bench / "lib", board.root.parent)


def demo(kit, board, program, *args, folder=None):
    """A detection demo from its own folder, LD_LIBRARY_PATH=./lib."""
    folder = folder or kit.zoo / program
    return _run(f"./{program}", args, folder, board, "./lib", board.root.parent)


def picture(name):
    return PICTURES_DIR / name


def top5(answer):
    """A classifier answer ``class:score,...`` as rknn_benchmark.parse gives a Top-5 block."""
    return [{"score": float(s), "class": int(c)} for c, s in (item.split(":") for item in answer.split(","))]


def boxes(answer):
    """A detector answer ``label:l,t,r,b:score;...`` as (label, (l, t, r, b), score) tuples."""
    found = []
    for item in filter(None, answer.split(";")):
        label, box, score = item.split(":")
        found.append((label, tuple(int(v) for v in box.split(",")), float(score)))
    return found


def fps(parsed):
    return [1000 / ms for ms in parsed["loops_ms"]]


def tensor_line(index, t, side):
    """rknn_benchmark.cpp dump_tensor_attr(), with the strides as a real RK3588 run shows them."""
    n = 1
    for d in t.dims:
        n *= d
    w_stride, with_stride = 0, n
    if side == "input" and t.fmt == "NHWC":
        w_stride = t.dims[2]
    elif side == "output" and t.fmt == "NCHW":
        with_stride = t.dims[0] * -(-t.dims[1] // 16) * 16 * t.dims[2] * -(-t.dims[3] // 16) * 16
    return (f"  index={index}, name={t.name}, n_dims={len(t.dims)}, dims=[{', '.join(map(str, t.dims))}], "
            f"n_elems={n}, size={n}, w_stride = {w_stride}, size_with_stride={with_stride}, fmt={t.fmt}, "
            f"type={t.type}, qnt_type=AFFINE, zp={t.zp}, scale={t.scale:f}")


# --- rknn_benchmark: what it prints ---------------------------------------------------------


@pytest.mark.parametrize("name", list(vision.VISION_MODELS))
def test_each_model_parses_as_its_spec(kit, board, name):
    spec = vision.VISION_MODELS[name]
    r = bench(kit, board, kit.model(name), picture("cat.png"), 10)
    assert r.rc == 0, r.out + r.err
    p = r.parsed
    assert p["complete"] is True and p["cut_short"] is None, p
    assert p["errors"] == []
    assert (p["runtime_version"], p["driver_version"]) == ("2.3.2", "0.9.8")
    assert r.lines[0] == f"rknn_api/rknnrt version: {RUNTIME}, driver version: 0.9.8"
    assert (p["weight_size"], p["internal_size"], p["dma_size"]) == (spec.weight_size, spec.internal_size,
                                                                    spec.dma_size)
    assert p["inputs"] == [{"name": t.name, "dims": list(t.dims), "type": t.type} for t in spec.inputs]
    assert p["outputs"] == [{"name": t.name, "dims": list(t.dims), "type": t.type} for t in spec.outputs]
    for i, t in enumerate(spec.inputs):
        assert tensor_line(i, t, "input") in r.lines
    for i, t in enumerate(spec.outputs):
        assert tensor_line(i, t, "output") in r.lines
    assert len(p["warmup_ms"]) == 5 and len(p["loops_ms"]) == 10
    assert [len(block) for block in p["top5"]] == [5] * len(spec.outputs)
    for block in p["top5"]:
        scores = [e["score"] for e in block]
        assert scores == sorted(scores, reverse=True)
    if spec.kind == "classification":
        assert p["top5"][0] == top5(spec.answers["cat.png"])
    assert board.npu_calls == ["freq", "busy 85 0", "idle"]


def test_lines_come_in_the_tools_order(kit, board):
    """The order of rknn_benchmark.cpp main(): versions, memory, tensors, custom string, 5 warm-up
    runs, the timed loops, the average between blank lines, the saves, one Top block per output."""
    spec = vision.VISION_MODELS[YOLOV5]
    r = bench(kit, board, kit.model(YOLOV5), "", 3)
    expected = [
        f"rknn_api/rknnrt version: {RUNTIME}, driver version: 0.9.8",
        f"total weight size: {spec.weight_size}, total internal size: {spec.internal_size}",
        f"total dma used size: {spec.dma_size}",
        "model input num: 1, output num: 3",
        "input tensors:", tensor_line(0, spec.inputs[0], "input"),
        "output tensors:", *(tensor_line(i, t, "output") for i, t in enumerate(spec.outputs)),
        "custom string: ",
        "Warmup ...", *["LOOP"] * 5,
        "Begin perf ...", *["LOOP"] * 3,
        "", "AVG", "",
        "Save output to rt_output0.npy", "Save output to rt_output1.npy", "Save output to rt_output2.npy",
        *(["---- Top5 ----", *["TOP"] * 5] * 3),
    ]
    shape = []
    for line in r.lines:
        if LOOP.match(line):
            shape.append("LOOP")
        elif re.fullmatch(r"Avg Time \d+\.\d\dms, Avg FPS = \d+\.\d{3}", line):
            shape.append("AVG")
        elif re.fullmatch(r"\d\.\d{6} - \d+", line):
            shape.append("TOP")
        else:
            shape.append(line)
    assert shape == expected
    assert r.rc == 0 and r.err == ""


def test_every_picture_gets_the_classifiers_answer(kit, board):
    for name in CLASSIFIERS:
        spec = vision.VISION_MODELS[name]
        for pic, answer in spec.answers.items():
            if pic == "-":
                continue
            p = bench(kit, board, kit.model(name), picture(pic), 1).parsed
            assert p["complete"], (name, pic, p)
            assert p["top5"][0] == top5(answer), (name, pic)


def test_no_input_is_the_zero_filled_answer(kit, board):
    for name in CLASSIFIERS:
        p = bench(kit, board, kit.model(name), "", 2).parsed
        assert p["top5"][0] == top5(vision.VISION_MODELS[name].answers["-"])
    # no input path at all: the same zero-filled inputs, the default 10 loops
    p = bench(kit, board, kit.model(MOBILENET)).parsed
    assert p["complete"] and len(p["loops_ms"]) == rknn_benchmark.DEFAULT_LOOPS
    assert p["top5"][0] == top5(vision.VISION_MODELS[MOBILENET].answers["-"])


def test_an_unknown_picture_gets_a_stable_answer(kit, board, tmp_path):
    img = tmp_path / "unknown.png"
    Image.new("RGB", (300, 200), (10, 120, 200)).save(img)
    first = bench(kit, board, kit.model(RESNET), img, 1).parsed["top5"][0]
    second = bench(kit, board, kit.model(RESNET), img, 1).parsed["top5"][0]
    assert first == second
    assert len(first) == 5 and len({e["class"] for e in first}) == 5
    assert all(0 <= e["class"] < 1000 for e in first)
    assert [e["score"] for e in first] == sorted((e["score"] for e in first), reverse=True)
    assert first not in [top5(a) for a in vision.VISION_MODELS[RESNET].answers.values()]
    # another picture, another answer
    img2 = tmp_path / "unknown2.png"
    Image.new("RGB", (300, 200), (200, 20, 20)).save(img2)
    assert bench(kit, board, kit.model(RESNET), img2, 1).parsed["top5"][0] != first


def test_detector_top5_does_not_depend_on_the_run(kit, board):
    a = bench(kit, board, kit.model(YOLOV8), picture("cat.png"), 1).parsed["top5"]
    b = bench(kit, board, kit.model(YOLOV8), "", 1).parsed["top5"]
    assert a == b and len(a) == 9


# --- rknn_benchmark: speed ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(vision.VISION_MODELS))
def test_fps_is_the_published_figure(kit, board, name):
    spec = vision.VISION_MODELS[name]
    single = bench(kit, board, kit.model(name), "", 20, 1).parsed
    assert statistics.median(fps(single)) == pytest.approx(spec.published_fps, rel=0.10)
    assert single["avg_fps"] == pytest.approx(spec.published_fps, rel=0.10)
    # the first warm-up run is the slow one
    assert single["warmup_ms"][0] > 1.15 * statistics.median(single["loops_ms"])
    both = bench(kit, board, kit.model(name), "", 20, 3).parsed
    assert statistics.median(fps(both)) == pytest.approx(spec.published_fps * spec.multicore, rel=0.10)
    assert board.npu_calls == ["freq", "busy 85 0", "idle", "freq", "busy 80 80", "idle"]


def test_core_masks_load_their_cores(kit, board):
    for mask, load in ((0, "85 0"), (1, "85 0"), (2, "0 85"), (3, "80 80")):
        p = bench(kit, board, kit.model(MOBILENET), "", 2, mask).parsed
        assert p["complete"] and p["errors"] == []
        assert board.npu_calls[-2:] == [f"busy {load}", "idle"]


def test_runs_vary_from_run_to_run(kit, board):
    a = bench(kit, board, kit.model(YOLOV5), "", 10).parsed["loops_ms"]
    b = bench(kit, board, kit.model(YOLOV5), "", 10).parsed["loops_ms"]
    assert a != b
    assert max(a) / min(a) < 1.04  # +-1.5 % noise


def test_half_the_npu_clock_halves_fps(kit, board):
    spec = vision.VISION_MODELS[YOLOV8]
    board.npu(475_000_000)
    p = bench(kit, board, kit.model(YOLOV8), "", 20).parsed
    assert statistics.median(fps(p)) == pytest.approx(spec.published_fps / 2, rel=0.10)


def test_rknn_slow_slows_only_the_named_model(kit, board):
    v5, v8 = vision.VISION_MODELS[YOLOV5], vision.VISION_MODELS[YOLOV8]
    board.fault("rknn-slow", f"{YOLOV5}:10")
    slow = statistics.median(fps(bench(kit, board, kit.model(YOLOV5), "", 20).parsed))
    other = statistics.median(fps(bench(kit, board, kit.model(YOLOV8), "", 20).parsed))
    assert slow == pytest.approx(v5.published_fps * 0.9, rel=0.04)
    assert slow < v5.published_fps * 0.95
    assert other == pytest.approx(v8.published_fps, rel=0.04)
    # a bare percentage slows every model
    board.fault("rknn-slow", "50")
    half = statistics.median(fps(bench(kit, board, kit.model(YOLOV8), "", 20).parsed))
    assert half == pytest.approx(v8.published_fps * 0.5, rel=0.05)


# --- rknn_benchmark: faults and refusals ----------------------------------------------------


def test_rknn_answer_swaps_the_first_two_classes(kit, board):
    right = top5(vision.VISION_MODELS[MOBILENET].answers["cat.png"])
    board.fault("rknn-answer", RESNET)  # another model: this one still answers right
    assert bench(kit, board, kit.model(MOBILENET), picture("cat.png"), 1).parsed["top5"][0] == right
    board.fault("rknn-answer", MOBILENET)
    wrong = bench(kit, board, kit.model(MOBILENET), picture("cat.png"), 1).parsed["top5"][0]
    assert [e["class"] for e in wrong] == [right[1]["class"], right[0]["class"]] + [e["class"] for e in right[2:]]
    assert [e["score"] for e in wrong] == [e["score"] for e in right]
    board.fault("rknn-answer", "1")  # every model
    assert bench(kit, board, kit.model(RESNET), picture("cat.png"), 1).parsed["top5"][0] != top5(
        vision.VISION_MODELS[RESNET].answers["cat.png"])


def test_a_model_for_another_soc_is_refused(kit, board):
    r = bench(kit, board, kit.model(vision.FOREIGN.name), picture("cat.png"), 10)
    assert r.rc == 255  # main() returns -1
    assert r.lines[-1] == "rknn_init fail! ret=-1"
    assert any(re.fullmatch(r"E RKNN: \[[\d:.]+\] rknn_init, load model failed!", line) for line in r.lines)
    p = r.parsed
    assert p["complete"] is False and p["cut_short"] is None
    assert "rknn_init fail! ret=-1" in p["errors"]
    assert p["runtime_version"] is None and "Warmup ..." not in r.lines
    assert board.npu_calls == ["freq"]  # the NPU never computed


def test_a_corrupt_model_is_refused(kit, board):
    r = bench(kit, board, kit.model("corrupt"), "", 10)
    assert r.rc == 255
    said = [re.sub(r"^E RKNN: \[[\d:.]+\] ", "", line) for line in r.lines]
    assert said == ["parseRKNN: invalid RKNN_MAGIC!", "parseRKNN from path: Invalid RKNN format!",
                    "rknn_init, load model failed!", "rknn_init fail! ret=-1"]
    assert all(line.startswith("E RKNN: [") for line in r.lines[:3])


def test_a_missing_model_is_refused(kit, board):
    r = bench(kit, board, kit.model("not-there"))
    assert r.rc == 255 and r.lines[-1] == "rknn_init fail! ret=-1"


def test_no_driver_no_init(kit, board):
    (board.root / "sys/kernel/debug/rknpu/version").unlink()
    r = bench(kit, board, kit.model(MOBILENET))
    assert r.rc == 255
    assert "failed to open rknpu module, need to insmod rknpu dirver!" in r.out
    assert r.lines[-1] == "rknn_init fail! ret=-1"


def test_usage_line(kit, board):
    r = bench(kit, board)
    program = kit.bench / "rknn_benchmark"
    assert r.rc == 255
    assert r.out == f"Usage:{program} model_path [input_path] [loop_count] [core_mask]\n"
    assert r.parsed["errors"] and r.parsed["complete"] is False


def test_core_mask_7_is_refused_and_the_tool_runs_on(kit, board):
    r = bench(kit, board, kit.model(YOLOV5), "", 5, 7)
    assert r.rc == 0
    at = next(i for i, line in enumerate(r.lines) if CORE_MASK_ERROR.match(line))
    assert r.lines[at - 1] == "custom string: " and r.lines[at + 1] == "Warmup ..."
    p = r.parsed
    assert p["complete"] and len(p["loops_ms"]) == 5 and len(p["errors"]) == 1
    spec = vision.VISION_MODELS[YOLOV5]
    assert statistics.median(fps(p)) == pytest.approx(spec.published_fps, rel=0.10)  # one core
    assert board.npu_calls[-2:] == ["busy 85 0", "idle"]


def test_without_librknnrt_the_loader_stops_it(kit, board, tmp_path):
    empty = tmp_path / "nolib"
    empty.mkdir()
    r = bench(kit, board, kit.model(MOBILENET), lib=empty)
    assert r.rc == 127 and r.out == ""
    assert r.err == (f"{kit.bench / 'rknn_benchmark'}: error while loading shared libraries: librknnrt.so: "
                     f"cannot open shared object file: No such file or directory\n")


def test_input_that_is_not_a_picture(kit, board, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    r = bench(kit, board, kit.model(MOBILENET), text, 10)
    assert r.rc == 0  # goto out: main returns 0
    assert r.lines[-1] == "load image failed!" and "Warmup ..." not in r.lines
    p = r.parsed
    assert p["complete"] is False and p["errors"] == ["load image failed!"]
    r = bench(kit, board, kit.model(MOBILENET), f"{picture('cat.png')}#{picture('cat.png')}", 10)
    assert r.lines[-1] == "input missing!, need input number: 1, only get 2 inputs"


# --- the model zoo detection demos ----------------------------------------------------------


def demo_boxes(out):
    return [(m[1], (int(m[2]), int(m[3]), int(m[4]), int(m[5])), float(m[6]))
            for m in (BOX.match(line) for line in out.splitlines()) if m]


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detection_demo_prints_the_spec_boxes(kit, board, name):
    spec = vision.VISION_MODELS[name]
    program = DETECTORS[name]
    for pic, answer in spec.answers.items():
        if pic == "-":
            continue
        r = demo(kit, board, program, kit.model(name), picture(pic))
        assert r.rc == 0, r.out + r.err
        assert demo_boxes(r.out) == boxes(answer), pic
        lines = r.lines
        assert lines[0] == "load lable ./model/coco_80_labels_list.txt"
        assert lines[1] == f"model input num: 1, output num: {len(spec.outputs)}"
        assert "model is NHWC input fmt" in lines and "model input height=640, width=640, channel=3" in lines
        assert ("scale=1.632653 dst_box=(0 0 639 639) allow_slight_change=1 _left_offset=0 _top_offset=0 "
                "padding_w=0 padding_h=0") in lines
        run_at = lines.index("rknn_run")
        assert re.fullmatch(r"write_image path: out\.png width=392 height=392 channel=3 data=0x[0-9a-f]+",
                            lines[-1])
        assert len(lines) == run_at + 2 + len(boxes(answer))
    assert board.npu_calls[-2:] == ["busy 85 0", "idle"]


def test_detection_demo_tensor_lines(kit, board):
    spec = vision.VISION_MODELS[YOLOV5]
    r = demo(kit, board, DETECTORS[YOLOV5], kit.model(YOLOV5), picture("cat.png"))
    t = spec.outputs[1]
    assert (f"  index=1, name={t.name}, n_dims=4, dims=[1, 255, 40, 40], n_elems=408000, size=408000, fmt=NCHW, "
            f"type=INT8, qnt_type=AFFINE, zp=-128, scale=0.003922") in r.lines


def test_detection_demo_answer_fault_moves_to_the_next_label(kit, board):
    board.fault("rknn-answer", YOLOV5)
    r = demo(kit, board, DETECTORS[YOLOV5], kit.model(YOLOV5), picture("cat.png"))
    assert demo_boxes(r.out) == [("dog", (41, 34, 351, 358), 0.912)]
    r = demo(kit, board, DETECTORS[YOLOV5], kit.model(YOLOV5), picture("red-circle.png"))
    assert demo_boxes(r.out)[0][0] == "kite"  # sports ball -> kite
    r = demo(kit, board, DETECTORS[YOLOV8], kit.model(YOLOV8), picture("cat.png"))
    assert demo_boxes(r.out)[0][0] == "cat"  # not named


def test_detection_demo_without_its_labels(kit, board, tmp_path):
    folder = tmp_path / "rknn_yolov5_demo"
    shutil.copytree(kit.zoo / "rknn_yolov5_demo", folder)
    (folder / "model" / "coco_80_labels_list.txt").unlink()
    r = demo(kit, board, "rknn_yolov5_demo", kit.model(YOLOV5), picture("cat.png"), folder=folder)
    assert r.lines[:2] == ["load lable ./model/coco_80_labels_list.txt",
                           "Open ./model/coco_80_labels_list.txt fail!"]
    # the demo goes on, and names every class "null" (coco_cls_to_name without labels)
    assert demo_boxes(r.out) == [("null", (41, 34, 351, 358), 0.912)]
    assert ("cat @ (41 34 351 358) 0.912") not in r.lines


def test_detection_demo_refusals(kit, board):
    program = DETECTORS[YOLOV5]
    r = demo(kit, board, program, kit.model(YOLOV5))
    assert r.rc == 255 and r.out == f"./{program} <model_path> <image_path>\n"
    r = demo(kit, board, program, kit.model(vision.FOREIGN.name), picture("cat.png"))
    assert r.rc == 0
    assert r.lines[-2:] == ["rknn_init fail! ret=-1",
                            f"init_yolov5_model fail! ret=-1 model_path={kit.model(vision.FOREIGN.name)}"]
    assert "rknn_run" not in r.lines
    r = demo(kit, board, program, kit.model(YOLOV5), PICTURES_DIR / "missing.png")
    assert r.lines[-2:] == [f"error: read image {PICTURES_DIR / 'missing.png'} fail",
                            f"read image fail! ret=-1 image_path={PICTURES_DIR / 'missing.png'}"]
    empty = board.root.parent / "nolib"
    shutil.copytree(kit.zoo / program, empty)
    (empty / "lib" / "librga.so").unlink()
    r = demo(kit, board, program, kit.model(YOLOV5), picture("cat.png"), folder=empty)
    assert r.rc == 127 and "librga.so: cannot open shared object file" in r.err
