"""hil.rockchip.rknn_benchmark: ``argv`` against the tool's source (rknn_benchmark.cpp main()), the
parser against real captures quoted from public threads (each named above it) and against
captures built from the tool's printf formats (marked CONSTRUCTED), and ``hil parse rknn-benchmark``."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.rockchip import rknn_benchmark as rb

# --- real captures, quoted as the threads have them ------------------------------------------------

# airockchip/rknn-toolkit2#129 ("基于RK3588 使用 rknn_benchmark 测试 YOLOv5s，
# 发现3核心的帧率比1核心快不了多少", BUG1989, 2024-08-26): ROCK 5 Model B (RK3588), rknnrt 2.1.0, driver 0.9.6, core mask 1, from its
# code fence. The stored copy of the thread ends in the middle of "Begin perf ...", so this is also
# a capture cut short, right after the warm-up.
TK2_129_RK3588 = """\
```
radxa@rock-5b:~/rknn/test/rknn_benchmark_Linux$ ./rknn_benchmark ../yolov5s.rknn ../cat.jpg 10 1
rknn_api/rknnrt version: 2.1.0 (967d001cc8@2024-08-07T19:28:19), driver version: 0.9.6
total weight size: 7315840, total internal size: 6144000
total dma used size: 22917120
model input num: 1, output num: 3
input tensors:
  index=0, name=images, n_dims=4, dims=[1, 640, 640, 3], n_elems=1228800, size=1228800, w_stride = 640, \
size_with_stride=1228800, fmt=NHWC, type=INT8, qnt_type=AFFINE, zp=-128, scale=0.003922
output tensors:
  index=0, name=326, n_dims=4, dims=[1, 255, 80, 80], n_elems=1632000, size=1632000, w_stride = 0, \
size_with_stride=1638400, fmt=NCHW, type=INT8, qnt_type=AFFINE, zp=57, scale=0.109260
  index=1, name=370, n_dims=4, dims=[1, 255, 40, 40], n_elems=408000, size=408000, w_stride = 0, \
size_with_stride=491520, fmt=NCHW, type=INT8, qnt_type=AFFINE, zp=46, scale=0.096394
  index=2, name=414, n_dims=4, dims=[1, 255, 20, 20], n_elems=102000, size=102000, w_stride = 0, \
size_with_stride=163840, fmt=NCHW, type=INT8, qnt_type=AFFINE, zp=43, scale=0.086990
custom string:
Warmup ...
   0: Elapse Time = 27.64ms, FPS = 36.18
   1: Elapse Time = 27.52ms, FPS = 36.34
   2: Elapse Time = 27.50ms, FPS = 36.36
   3: Elapse Time = 27.49ms, FPS = 36.38
   4: Elapse Time = 27.53ms, FPS = 36.32
Begin p"""

# rockchip-linux/rknn-toolkit2#297 ("Run Multiple Models at the same time on RK3588", zaferarican,
# 2024-03-16): rknn_benchmark given a core mask on an Orange Pi 5 Plus (RK3588) under kernel 6.1.43,
# quoted in the issue as a blockquote.
TK2_297_CORE_MASK_RUN_ERROR = """\
> E RKNN: [17:26:07.646] failed to submit!, op id: 1, op name: Conv:Conv_0, flags: 0x5, task start: 618, \
task number: 21, run task counter: 0, int status: 0, please try updating to the latest version of the toolkit2 \
and runtime from: https://console.zbox.filez.com/l/I00fc3 (PWD: rknn)
> rknn run error -1
"""

# jas-hacks.blogspot.com, June 2023, "RK3588 - RKNN Object detection on multiple video streams": the
# averages of rknn_benchmark on yolov5s-640-640.rknn (RKNPU SDK 1.5.0), 1000 loops with core mask 7,
# then three instances with masks 1, 2 and 4; the post's own words around them.
JAS_HACKS_RK3588_MASKS = """\
For instance, when running rknn_benchmark against yolov5s-640-640.rknn for 1000 iterations with a core mask \
of 7 (tri-core), the results observed are (v1.5.0 sdk) :

Avg Time 9.86ms, Avg FPS = 101.416

Running 3 separate instances of rknn benchmark for same model with core mask 1, 2 & 4 (single core) the \
average per instance is :

Avg Time 18.84ms, Avg FPS = 53.084
"""

# rockchip-linux/rknn-toolkit2#316 ("初始化环境失败：Invalid RKNN model version 6"), comment by 133673,
# 2024-08-05: a NanoPC-T6 (RK3588) running rknn_model_zoo 1.6.0's rknn_yolov8_demo on a model newer
# than its librknnrt. librknnrt's lines and "rknn_init fail! ret=-1" are what rknn_benchmark prints
# on the same failure (the same printf in its main()); the last line is the demo's own, cut off in
# the stored copy of the thread.
TK2_316_INIT_FAILURE = """\
pi@NanoPC-T6-LTS:~/rk_zo/1.6/rknn_model_zoo-1.6.0/install/rk3588_linux_aarch64/rknn_yolov8_demo$ sudo \
./rknn_yolov8_demo model/yolov8.rknn model/bus.jpg
load lable ./model/coco_80_labels_list.txt
E RKNN: [16:40:58.701] 6, 1
E RKNN: [16:40:58.701] Invalid RKNN model version 6
E RKNN: [16:40:58.701] rknn_init, load model failed!
rknn_init fail! ret=-1
init_yolov8_model fail! ret=-1 model_path=m"""

# airockchip/rknn-toolkit2#254 ("Invalid RKNN model version 6", hi20240217, 2025-01-10): librknnrt
# 1.3.0 under rknn-toolkit-lite2 2.3.0, its version lines in the old "Information: ..." form.
TK2_254_LITE2_OLD_RUNTIME = """\
W rknn-toolkit-lite2 version: 2.3.0
--> Load RKNN model
done
--> Init runtime environment
I RKNN: [21:32:53.643] RKNN Runtime Information: librknnrt version: 1.3.0 (c193be371@2022-05-04T20:16:33)
I RKNN: [21:32:53.643] RKNN Driver Information: version: 0.7.2
E RKNN: [21:32:53.643] 6, 1
E RKNN: [21:32:53.643] Invalid RKNN model version 6
E RKNN: [21:32:53.643] rknn_init, load model failed!
E Catch exception when init runtime!
E Traceback (most recent call last):
  File "/usr/local/lib/python3.8/dist-packages/rknnlite/api/rknn_lite.py", line 157, in init_runtime
    self.rknn_runtime.build_graph(self.rknn_data, self.load_model_in_npu)
  File "rknnlite/api/rknn_runtime.py", line 921, in rknnlite.api.rknn_runtime.RKNNRuntime.build_graph
Exception: RKNN init failed. error code: RKNN_ERR_FAIL

Init runtime environment failed
"""

# rockchip-linux/rknn-toolkit2#320 (livelove1987, 2024-06-30): Orange Pi 5 Plus (RK3588), failures
# only on NPU cores 1 and 2; librknnrt 1.6.0's version lines in the newer "Information, ..." form,
# the first pasted without its "I".
TK2_320_RUNTIME_LINES = """\
  RKNN: [17:19:24.679] RKNN Runtime Information, librknnrt version: 1.6.0 (9a7b5d24c@2023-12-13T17:31:11)
I RKNN: [17:19:24.690] RKNN Driver Information, version: 0.9.3
I RKNN: [17:19:24.720] RKNN Model Information, version: 6, toolkit version: 1.6.0+81f21f4d(compiler version: \
1.6.0 (585b3edcf@2023-12-11T08:03:14)), target: RKNPU v2, target platform: rk3588, framework name: ONNX, \
framework layout: NCHW, model inference type: static_shape
"""

# rockchip.md §2 (DShanPi RK3576 log): librknnrt on RK3576 refusing RK3588's three-core mask.
RK3576_MASK_REFUSED = ("E RKNN: [08:04:38.229] rknn_set_core_mask: unavailable core mask found for current "
                       "platform! max core mask = 3")


def empty(**fields) -> dict:
    out = {key: None for key in rb.KEYS}
    out.update(inputs=[], outputs=[], loops_ms=[], top5=[], warmup_ms=[], errors=[], complete=False)
    out.update(fields)
    return out


YOLOV5S_INPUT = {"name": "images", "dims": [1, 640, 640, 3], "type": "INT8"}
YOLOV5S_OUTPUTS = [{"name": "326", "dims": [1, 255, 80, 80], "type": "INT8"},
                   {"name": "370", "dims": [1, 255, 40, 40], "type": "INT8"},
                   {"name": "414", "dims": [1, 255, 20, 20], "type": "INT8"}]


def test_real_rk3588_capture_cut_after_the_warm_up_keeps_what_it_has():
    assert rb.parse(TK2_129_RK3588) == empty(
        runtime_version="2.1.0", driver_version="0.9.6",
        weight_size=7315840, internal_size=6144000, dma_size=22917120,
        inputs=[YOLOV5S_INPUT], outputs=YOLOV5S_OUTPUTS,
        warmup_ms=[27.64, 27.52, 27.5, 27.49, 27.53],
        cut_short="ends after the 5 warm-up runs, before the timed loops ('Begin perf ...')")


def test_real_capture_through_a_serial_console_reads_the_same():
    serial = "\x1b[1;32mradxa@rock-5b\x1b[0m:~$ " + TK2_129_RK3588.replace("\n", "\r\r\n")
    assert rb.parse(serial) == rb.parse(TK2_129_RK3588)


def test_real_core_mask_run_error_is_a_failure_not_a_cut():
    assert rb.parse(TK2_297_CORE_MASK_RUN_ERROR) == empty(errors=[
        "E RKNN: [17:26:07.646] failed to submit!, op id: 1, op name: Conv:Conv_0, flags: 0x5, task start: 618, "
        "task number: 21, run task counter: 0, int status: 0, please try updating to the latest version of the "
        "toolkit2 and runtime from: https://console.zbox.filez.com/l/I00fc3 (PWD: rknn)",
        "rknn run error -1"])


def test_real_averages_for_core_masks_are_two_runs():
    first, second = rb.runs(JAS_HACKS_RK3588_MASKS)
    after_average = "ends after the average, before the Top5 ('---- Top5 ----')"
    assert first == empty(avg_ms=9.86, avg_fps=101.416, cut_short=after_average)
    assert second == empty(avg_ms=18.84, avg_fps=53.084, cut_short=after_average)
    assert rb.parse(JAS_HACKS_RK3588_MASKS) == first


def test_real_model_version_mismatch_gives_errors_and_no_completion():
    assert rb.parse(TK2_316_INIT_FAILURE) == empty(errors=[
        "E RKNN: [16:40:58.701] 6, 1",
        "E RKNN: [16:40:58.701] Invalid RKNN model version 6",
        "E RKNN: [16:40:58.701] rknn_init, load model failed!",
        "rknn_init fail! ret=-1"])  # the demo's own "init_yolov8_model fail!" is no rknn_benchmark line


def test_real_runtime_information_lines_give_the_versions_when_the_tool_printed_none():
    assert rb.parse(TK2_254_LITE2_OLD_RUNTIME) == empty(
        runtime_version="1.3.0", driver_version="0.7.2",
        cut_short="holds no rknn_benchmark output",
        errors=["E RKNN: [21:32:53.643] 6, 1",
                "E RKNN: [21:32:53.643] Invalid RKNN model version 6",
                "E RKNN: [21:32:53.643] rknn_init, load model failed!"])
    newer = rb.parse(TK2_320_RUNTIME_LINES)
    assert (newer["runtime_version"], newer["driver_version"], newer["errors"]) == ("1.6.0", "0.9.3", [])


# --- CONSTRUCTED captures: every line is a printf of rknn_benchmark.cpp main() (rknpu2@4e2101a) -----
# The real ones above stop early; these carry a run to its end. The numbers are made up (RK3576,
# mobilenet-sized: rockchip.md puts mobilenetv2 at 467 FPS on one RK3576 core); the librknnrt lines
# are in the form of TK2_320_RUNTIME_LINES.

HEAD_RK3576 = """\
rknn_api/rknnrt version: 2.3.0 (c949ad889d@2024-11-07T11:35:33), driver version: 0.9.8
total weight size: 3506176, total internal size: 1204224
total dma used size: 5558272
model input num: 1, output num: 1
input tensors:
  index=0, name=input, n_dims=4, dims=[1, 224, 224, 3], n_elems=150528, size=150528, w_stride = 224, \
size_with_stride=150528, fmt=NHWC, type=INT8, qnt_type=AFFINE, zp=-14, scale=0.018658
output tensors:
  index=0, name=output, n_dims=2, dims=[1, 1000], n_elems=1000, size=1000, w_stride = 0, size_with_stride=1000, \
fmt=UNDEFINED, type=INT8, qnt_type=AFFINE, zp=-55, scale=0.141923
custom string: \n"""
WARMUP = "Warmup ...\n" + "".join(f"{i:4d}: Elapse Time = {ms:.2f}ms, FPS = {1000 / ms:.2f}\n"
                                  for i, ms in enumerate([2.61, 2.20, 2.15, 2.14, 2.14]))
LOOPS = [2.14, 2.13, 2.15, 2.14, 2.16]
PERF = "Begin perf ...\n" + "".join(f"{i:4d}: Elapse Time = {ms:.2f}ms, FPS = {1000 / ms:.2f}\n"
                                    for i, ms in enumerate(LOOPS))
AVERAGE = "\nAvg Time 2.14ms, Avg FPS = 466.853\n\n"
TAIL = """\
Save output to rt_output0.npy
---- Top5 ----
0.935059 - 156
0.057861 - 155
0.002930 - 205
0.001221 - 154
0.000977 - 284
"""
FULL_RK3576 = HEAD_RK3576 + WARMUP + PERF + AVERAGE + TAIL
HEAD_FIELDS = dict(runtime_version="2.3.0", driver_version="0.9.8", weight_size=3506176, internal_size=1204224,
                   dma_size=5558272, inputs=[{"name": "input", "dims": [1, 224, 224, 3], "type": "INT8"}],
                   outputs=[{"name": "output", "dims": [1, 1000], "type": "INT8"}],
                   warmup_ms=[2.61, 2.2, 2.15, 2.14, 2.14])
TOP5 = [[{"score": 0.935059, "class": 156}, {"score": 0.057861, "class": 155}, {"score": 0.00293, "class": 205},
         {"score": 0.001221, "class": 154}, {"score": 0.000977, "class": 284}]]


def test_constructed_full_run_is_complete():
    assert rb.parse(FULL_RK3576) == empty(**HEAD_FIELDS, loops_ms=LOOPS, avg_ms=2.14, avg_fps=466.853,
                                          top5=TOP5, complete=True)


def test_constructed_run_over_ssh_with_prompt_ansi_crlf_and_runtime_log_lines():
    lines = FULL_RK3576.splitlines()
    lines.insert(0, "\x1b[01;32mroot@rk3576\x1b[00m:\x1b[01;34m/userdata\x1b[00m# ./rknn_benchmark "
                    "mobilenetv2.rknn '' 5 3")
    lines.insert(1, "I RKNN: [10:01:02.003] RKNN Runtime Information, librknnrt version: 2.3.0 "
                    "(c949ad889d@2024-11-07T11:35:33)")
    lines.insert(2, "I RKNN: [10:01:02.003] RKNN Driver Information, version: 0.9.8")
    lines.insert(12, "W RKNN: [10:01:02.010] Output(output):size_with_stride larger than model origin size")
    lines.append("\x1b[01;32mroot@rk3576\x1b[00m:\x1b[01;34m/userdata\x1b[00m# ")
    assert rb.parse("\r\n".join(lines)) == rb.parse(FULL_RK3576)


def test_constructed_capture_cut_after_some_loops_keeps_them_and_says_so():
    cut = (HEAD_RK3576 + WARMUP + "Begin perf ...\n"
           "   0: Elapse Time = 2.14ms, FPS = 467.29\n"
           "   1: Elapse Time = 2.13ms, FPS = 469.48\n"
           "   2: Elapse Time = 2.15ms, FPS = 465.12\n"
           "   3: Elapse Ti")
    assert rb.parse(cut) == empty(**HEAD_FIELDS, loops_ms=[2.14, 2.13, 2.15],
                                  cut_short="ends after 3 timed loops, before the average ('Avg Time ...')")


@pytest.mark.parametrize("text, where", [
    (HEAD_RK3576, "ends in the model information, before the warm-up ('Warmup ...')"),
    (HEAD_RK3576 + "Warmup ...\n   0: Elapse Time = 2.61ms, FPS = 383.14\n",
     "ends during the warm-up, after 1 of 5 runs"),
    (HEAD_RK3576 + WARMUP + PERF + AVERAGE + "Save output to rt_output0.npy\n---- Top5 ----\n0.935059 - 156\n",
     "ends inside the Top5 of output 0 (1 of 5 lines)"),
    ("", "holds no rknn_benchmark output"),
])
def test_constructed_cuts_say_where_they_end(text, where):
    out = rb.parse(text)
    assert (out["complete"], out["cut_short"]) == (False, where)


def test_constructed_multi_output_run_needs_a_top_block_per_output():
    head = TK2_129_RK3588.split("```\n", 1)[1].rsplit("Begin p", 1)[0]
    blocks = "".join("---- Top5 ----\n" + "".join(f"{s:8.6f} - {c}\n" for s, c in zip((9.5, 9.1, 8.7, 8.2, 8.0), c5))
                     for c5 in ((1, 2, 3, 4, 5), (6, 7, 8, 9, 10), (11, 12, 13, 14, 15)))
    run = head + PERF + AVERAGE + "".join(f"Save output to rt_output{i}.npy\n" for i in range(3)) + blocks
    out = rb.parse(run)
    assert out["complete"] is True and out["cut_short"] is None
    assert [[e["class"] for e in block] for block in out["top5"]] == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10],
                                                                      [11, 12, 13, 14, 15]]
    two_of_three = run[: run.rindex("---- Top5 ----")]
    out = rb.parse(two_of_three)
    assert (out["complete"], out["cut_short"]) == (False, "ends after the Top5 of 2 of 3 outputs")


def test_constructed_run_whose_mask_librknnrt_refused_completes_with_the_error():
    lines = FULL_RK3576.splitlines()
    lines.insert(lines.index("Warmup ..."), RK3576_MASK_REFUSED)  # rknn_set_core_mask() comes just before
    out = rb.parse("\n".join(lines))
    assert out["complete"] is True and out["cut_short"] is None
    assert out["errors"] == [RK3576_MASK_REFUSED]


def test_constructed_crash_mid_run_is_a_failure_not_a_cut():
    text = HEAD_RK3576 + WARMUP + "Begin perf ...\n   0: Elapse Time = 2.14ms, FPS = 467.29\nSegmentation fault\n"
    out = rb.parse(text)
    assert (out["loops_ms"], out["complete"], out["cut_short"], out["errors"]) == (
        [2.14], False, None, ["Segmentation fault"])


def test_constructed_tool_failures_are_errors():
    for line in ("rknn_init fail! ret=-6", "input missing!, need input number: 2, only get 1 inputs",
                 "load image failed!", "rknn_outputs_get fail! ret=-1",
                 "Usage:./rknn_benchmark model_path [input_path] [loop_count] [core_mask]",
                 "./rknn_benchmark: error while loading shared libraries: librknnrt.so: cannot open shared "
                 "object file: No such file or directory"):
        out = rb.parse(line + "\n")
        assert out["errors"] and line.endswith(out["errors"][0]) and out["cut_short"] is None, line


def test_constructed_sizes_past_2_gib_printed_with_percent_d_are_unsigned():
    out = rb.parse("total weight size: -1294967296, total internal size: 1000\n")
    assert (out["weight_size"], out["internal_size"]) == (3000000000, 1000)


def test_constructed_loops_without_headers_before_begin_perf_are_warm_ups():
    text = "   3: Elapse Time = 2.14ms, FPS = 467.29\n   4: Elapse Time = 2.14ms, FPS = 467.29\n" + PERF + AVERAGE
    out = rb.parse(text)
    assert (out["warmup_ms"], out["loops_ms"]) == ([2.14, 2.14], LOOPS)


def test_constructed_headless_loops_then_a_warm_up_are_two_runs():
    tail_of_one = "   8: Elapse Time = 2.14ms, FPS = 467.29\n   9: Elapse Time = 2.15ms, FPS = 465.12\n"
    first, second = rb.runs(tail_of_one + FULL_RK3576.split("custom string: \n", 1)[1])
    assert first == empty(loops_ms=[2.14, 2.15],
                          cut_short="ends after 2 timed loops, before the average ('Avg Time ...')")
    assert (second["warmup_ms"], second["loops_ms"], second["avg_ms"]) == (HEAD_FIELDS["warmup_ms"], LOOPS, 2.14)


def test_constructed_two_runs_in_one_capture():
    prompt = "root@rk3576:/userdata# ./rknn_benchmark mobilenetv2.rknn '' 5 {}\n"
    capture = prompt.format(1) + FULL_RK3576 + prompt.format(3) + FULL_RK3576.replace("2.14ms, Avg", "1.52ms, Avg")
    first, second = rb.runs(capture)
    assert first["avg_ms"] == 2.14 and second["avg_ms"] == 1.52
    assert first["complete"] and second["complete"]
    assert rb.parse(capture) == first


# --- argv ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [1, 2, 3, 0])
def test_argv_passes_each_rk3576_core_mask(mask):
    assert rb.argv("/userdata/mobilenetv2.rknn", core_mask=mask) == ["/userdata/mobilenetv2.rknn", "", "10", str(mask)]


def test_argv_forms():
    assert rb.argv("m.rknn") == ["m.rknn", "", "10"]  # no mask: the tool's default, 1 (core 0)
    assert rb.argv("m.rknn", "dog_224x224.jpg", 100, 3) == ["m.rknn", "dog_224x224.jpg", "100", "3"]
    assert rb.argv("m.rknn", "a.npy#b.npy", loops=1) == ["m.rknn", "a.npy#b.npy", "1"]
    assert rb.argv("m.rknn", "", 5, 2) == ["m.rknn", "", "5", "2"]
    # as a shell command (SSH): the empty input survives as '', as in Rockchip's `lenet.rknn "" 10 3`
    assert shlex.join(["./rknn_benchmark", *rb.argv("lenet.rknn", loops=10, core_mask=3)]) == \
        "./rknn_benchmark lenet.rknn '' 10 3"


@pytest.mark.parametrize("kwargs, message", [
    (dict(loops=0), "loops must be at least 1; got 0"),
    (dict(loops=-5), "loops must be at least 1; got -5"),
    (dict(loops=2 ** 31), "loops must be at most 2147483647"),
    (dict(loops=1.5), "loops must be a whole number of timed runs; got 1.5"),
    (dict(loops="10"), "loops must be a whole number of timed runs; got '10'"),
    (dict(loops=True), "loops must be a whole number of timed runs; got True"),
    (dict(core_mask=4), "core_mask 4 is not one RK3576 takes: 0 = auto (RKNN_NPU_CORE_AUTO), 1 = NPU core 0"),
    (dict(core_mask=7), "Masks 4 and 7 name RK3588's third NPU core"),
    (dict(core_mask=-1), "core_mask -1 is not one RK3576 takes"),
    (dict(core_mask=0xFFFF), "core_mask 65535 is not one RK3576 takes"),
    (dict(core_mask="3"), "core_mask '3' is not one RK3576 takes"),
    (dict(core_mask=True), "core_mask True is not one RK3576 takes"),
    (dict(input=["a.npy", "b.npy"]), "input must be a path (several joined with '#') or None"),
])
def test_argv_refuses(kwargs, message):
    with pytest.raises(ValueError) as e:
        rb.argv("m.rknn", **kwargs)
    assert message in str(e.value)


def test_argv_needs_a_model():
    for model in ("", "  ", None):
        with pytest.raises(ValueError, match="needs a model path"):
            rb.argv(model)


# --- hil parse rknn-benchmark ----------------------------------------------------------------------------
# The helpers serve test_zoo_demo's ``hil parse zoo-demo`` tests too.

NO_CAPTURE = "root@rk3576:~# uname -r\n6.1.75\n"  # a capture of something else
HIL = Path(sys.executable).parent / "hil"


def hil_parse(capsys, kind: str, path: Path, content: str | bytes) -> tuple[dict, str]:
    """``content`` written to ``path``, then ``hil parse KIND PATH`` through ``cli.main``, which
    must exit 0: ``(the JSON it printed, its stderr)``."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert cli.main(["parse", kind, str(path)]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def check_missing_file(tmp_path: Path, capsys, kind: str) -> None:
    """``hil parse KIND`` of a file that does not exist: exit 2, nothing on stdout, one error line."""
    missing = tmp_path / "nope.log"
    assert cli.main(["parse", kind, str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: cannot read {missing}: No such file or directory\n"


def hil_parse_stdin(kind: str, text: str, keys: tuple[str, ...]) -> dict:
    """``hil parse KIND -`` run as a program with ``text`` on stdin, which must exit 0, say nothing
    on stderr and print JSON with ``keys`` in order: that JSON."""
    r = subprocess.run([str(HIL), "parse", kind, "-"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = json.loads(r.stdout)
    assert list(out) == list(keys)
    return out


def test_cli_through_hil_main(tmp_path, capsys):
    out, err = hil_parse(capsys, "rknn-benchmark", tmp_path / "bench.log",
                         TK2_129_RK3588.replace("\n", "\r\n").encode())
    assert list(out) == list(rb.KEYS)
    assert out == rb.parse(TK2_129_RK3588)
    assert err == ""


def test_cli_warns_on_text_that_is_no_rknn_benchmark_output(tmp_path, capsys):
    path = tmp_path / "other.log"
    out, err = hil_parse(capsys, "rknn-benchmark", path, NO_CAPTURE)
    assert out == empty(cut_short="holds no rknn_benchmark output")
    assert err.startswith(f"warning: {path} does not look like rknn_benchmark output")


def test_cli_says_when_a_capture_holds_several_runs(tmp_path, capsys):
    path = tmp_path / "two.log"
    out, err = hil_parse(capsys, "rknn-benchmark", path, JAS_HACKS_RK3588_MASKS)
    assert out["avg_fps"] == 101.416
    assert err == (f"warning: {path} holds 2 runs of rknn_benchmark; the JSON is the first "
                   f"(hil.rockchip.rknn_benchmark.runs reads them all)\n")


def test_cli_missing_file(tmp_path, capsys):
    check_missing_file(tmp_path, capsys, "rknn-benchmark")


def test_cli_subprocess_reads_stdin():
    out = hil_parse_stdin("rknn-benchmark", TK2_316_INIT_FAILURE, rb.KEYS)
    assert out["complete"] is False and out["cut_short"] is None
    assert out["errors"][-2:] == ["E RKNN: [16:40:58.701] rknn_init, load model failed!", "rknn_init fail! ret=-1"]
