"""hil.rockchip.zoo_demo: the parser against real output of rknn_model_zoo's C demos (and of the
older rknpu2 demo they replaced), quoted from public repositories and threads (each named above
it), against captures built from those real ones (marked CONSTRUCTED, with what was changed),
``iou`` and ``match`` arithmetic, ``argv``, and ``hil parse zoo-demo``."""

from __future__ import annotations

import pytest

from hil.rockchip import zoo_demo as zd
from selftest.unit.test_rockchip_rknn_benchmark import NO_CAPTURE, check_missing_file, hil_parse, hil_parse_stdin

# --- real captures, quoted as the sources have them ------------------------------------------------------

# radxa-docs/docs@1af5dcd:docs/common/ai/rockchip/_yolov8.mdx, "运行示例": the current yolov8 demo's
# whole run, from its code fence (this copy of postprocess.cc spells "load label").
RADXA_YOLOV8 = """\
$ ./rknn_yolov8_demo model/yolov8.rknn model/bus.jpg
load label ./model/coco_80_labels_list.txt
model input num: 1, output num: 9
input tensors:
  index=0, name=images, n_dims=4, dims=[1, 640, 640, 3], n_elems=1228800, size=1228800, fmt=NHWC, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
output tensors:
  index=0, name=318, n_dims=4, dims=[1, 64, 80, 80], n_elems=409600, size=409600, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-58, scale=0.117659
  index=1, name=onnx::ReduceSum_326, n_dims=4, dims=[1, 80, 80, 80], n_elems=512000, size=512000, fmt=NCHW, \
type=INT8, qnt_type=AFFINE, zp=-128, scale=0.003104
  index=2, name=331, n_dims=4, dims=[1, 1, 80, 80], n_elems=6400, size=6400, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003173
  index=3, name=338, n_dims=4, dims=[1, 64, 40, 40], n_elems=102400, size=102400, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-45, scale=0.093747
  index=4, name=onnx::ReduceSum_346, n_dims=4, dims=[1, 80, 40, 40], n_elems=128000, size=128000, fmt=NCHW, \
type=INT8, qnt_type=AFFINE, zp=-128, scale=0.003594
  index=5, name=350, n_dims=4, dims=[1, 1, 40, 40], n_elems=1600, size=1600, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003627
  index=6, name=357, n_dims=4, dims=[1, 64, 20, 20], n_elems=25600, size=25600, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-34, scale=0.083036
  index=7, name=onnx::ReduceSum_365, n_dims=4, dims=[1, 80, 20, 20], n_elems=32000, size=32000, fmt=NCHW, \
type=INT8, qnt_type=AFFINE, zp=-128, scale=0.003874
  index=8, name=369, n_dims=4, dims=[1, 1, 20, 20], n_elems=400, size=400, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
model is NHWC input fmt
model input height=640, width=640, channel=3
origin size=640x640 crop size=640x640
input image: 640 x 640, subsampling: 4:2:0, colorspace: YCbCr, orientation: 1
scale=1.000000 dst_box=(0 0 639 639) allow_slight_change=1 _left_offset=0 _top_offset=0 padding_w=0 padding_h=0
rga_api version 1.10.1_[0]
rknn_run
person @ (211 241 282 506) 0.864
bus @ (96 136 549 449) 0.864
person @ (109 235 225 535) 0.860
person @ (477 226 560 522) 0.848
person @ (79 327 116 513) 0.306
write_image path: out.png width=640 height=640 channel=3 data=0x32a58800
"""
RADXA_YOLOV8_BOXES = [
    {"label": "person", "box": [211, 241, 282, 506], "score": 0.864},
    {"label": "bus", "box": [96, 136, 549, 449], "score": 0.864},
    {"label": "person", "box": [109, 235, 225, 535], "score": 0.860},
    {"label": "person", "box": [477, 226, 560, 522], "score": 0.848},
    {"label": "person", "box": [79, 327, 116, 513], "score": 0.306},
]

# radxa-docs/docs@49a3efc:docs/common/ai/rockchip/_mobilenet.mdx: the mobilenet demo's whole run
# (num_lines= from reading synset.txt; the picture's width sends the conversion to the CPU).
RADXA_MOBILENET = """\
$ ./rknn_mobilenet_demo ./model/mobilenet_v2.rknn ./model/bell.jpg
num_lines=1001
model input num: 1, output num: 1
input tensors:
  index=0, name=input, n_dims=4, dims=[1, 224, 224, 3], n_elems=150528, size=150528, fmt=NHWC, type=INT8, \
qnt_type=AFFINE, zp=-14, scale=0.018658
output tensors:
  index=0, name=output, n_dims=2, dims=[1, 1000, 0, 0], n_elems=1000, size=1000, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=-55, scale=0.141923
model is NHWC input fmt
model input height=224, width=224, channel=3
origin size=500x333 crop size=496x320
input image: 500 x 333, subsampling: 4:4:4, colorspace: YCbCr, orientation: 1
src width is not 4/16-aligned, convert image use cpu
finish
rknn_run
[494] score=0.993227 class=n03017168 chime, bell, gong
[469] score=0.002560 class=n02939185 caldron, cauldron
[747] score=0.000466 class=n04023962 punching bag, punch bag, punching ball, punchball
[792] score=0.000466 class=n04208210 shovel
[618] score=0.000405 class=n03633091 ladle
"""

# radxa-docs/docs@050a62b:docs/common/ai/rockchip/_retinaface.mdx: the RetinaFace demo's whole run,
# with librga's complaints about a colour fill in the middle (the demo goes on).
RADXA_RETINAFACE = """\
$ ./rknn_retinaface_demo ./model/RetinaFace.rknn ./model/test.jpg
model input num: 1, output num: 3
input tensors:
  index=0, name=input0, n_dims=4, dims=[1, 320, 320, 3], n_elems=307200, size=307200, fmt=NHWC, type=INT8, \
qnt_type=AFFINE, zp=-14, scale=1.074510
output tensors:
  index=0, name=output0, n_dims=3, dims=[1, 4200, 4, 0], n_elems=16800, size=16800, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=0, scale=0.044699
  index=1, name=572, n_dims=3, dims=[1, 4200, 2, 0], n_elems=8400, size=16800, fmt=UNDEFINED, type=FP16, \
qnt_type=AFFINE, zp=0, scale=1.000000
  index=2, name=571, n_dims=3, dims=[1, 4200, 10, 0], n_elems=42000, size=42000, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=-22, scale=0.086195
model is NHWC input fmt
model input height=320, width=320, channel=3
origin size=640x427 crop size=640x416
input image: 640 x 427, subsampling: 4:2:0, colorspace: YCbCr, orientation: 1
scale=0.500000 dst_box=(0 54 319 265) allow_slight_change=1 _left_offset=0 _top_offset=54 padding_w=0 padding_h=108
rga_api version 1.10.1_[0]
fill dst image (x y w h)=(0 0 320 320) with color=0x72727272
 RgaCollorFill(1819) RGA_COLORFILL fail: Invalid argument
 RgaCollorFill(1820) RGA_COLORFILL fail: Invalid argument
161 im2d_rga_impl rga_task_submit(2171): Failed to call RockChipRga interface, please use 'dmesg' command to \
view driver error log.
161 im2d_rga_impl rga_dump_channel_info(1500): src_channel:
  rect[x,y,w,h] = [0, 0, 0, 0]
  image[w,h,ws,hs,f] = [0, 0, 0, 0, rgba8888]
  buffer[handle,fd,va,pa] = [0, 0, 0, 0]
  color_space = 0x0, global_alpha = 0x0, rd_mode = 0x0

161 im2d_rga_impl rga_dump_channel_info(1500): dst_channel:
  rect[x,y,w,h] = [0, 0, 320, 320]
  image[w,h,ws,hs,f] = [320, 320, 320, 320, rgb888]
  buffer[handle,fd,va,pa] = [2, 0, 0, 0]
  color_space = 0x0, global_alpha = 0xff, rd_mode = 0x1

161 im2d_rga_impl rga_dump_opt(1550): opt version[0x0]:

161 im2d_rga_impl rga_dump_opt(1551): set_core[0x0], priority[0]

161 im2d_rga_impl rga_dump_opt(1554): color[0x72727272]
161 im2d_rga_impl rga_dump_opt(1563):

161 im2d_rga_impl rga_task_submit(2180): acquir_fence[-1], release_fence_ptr[0x0], usage[0x280000]

rknn_run
face @(302 72 476 296) score=0.999023
write_image path: result.jpg width=640 height=427 channel=3 data=0x6dfc610
"""

# khadas/edge2-npu@64b3dd3:C++/README-zh.md, "运行demo": Khadas' build of the older rknpu2 yolov5
# demo on an Edge2 (RK3588): "sdk version" line, tensor lines without headers, %f scores, and
# "loop count = ..." last.
KHADAS_EDGE2_OLD_DEMO = """\
$ cd install/yolov5
$ ./yolov5 data/model/yolov5s-640-640.rknn data/img/bus.jpg 
post process config: box_conf_threshold = 0.50, nms_threshold = 0.60
Read data/img/bus.jpg ...
img width = 640, img height = 640
Loading mode...
sdk version: 1.3.0 (c193be371@2022-05-04T20:16:33) driver version: 0.7.2
model input num: 1, output num: 3
  index=0, name=images, n_dims=4, dims=[1, 640, 640, 3], n_elems=1228800, size=1228800, fmt=NHWC, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
  index=0, name=output, n_dims=5, dims=[1, 3, 85, 80], n_elems=1632000, size=1632000, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=77, scale=0.080445
  index=1, name=371, n_dims=5, dims=[1, 3, 85, 40], n_elems=408000, size=408000, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=56, scale=0.080794
  index=2, name=390, n_dims=5, dims=[1, 3, 85, 20], n_elems=102000, size=102000, fmt=UNDEFINED, type=INT8, \
qnt_type=AFFINE, zp=69, scale=0.081305
model is NHWC input fmt
model input height=640, width=640, channel=3
once run use 32.872000 ms
loadLabelName ./data/coco_80_labels_list.txt
person @ (474 250 559 523) 0.996784
person @ (112 238 208 521) 0.992214
bus @ (99 141 557 445) 0.976798
person @ (211 242 285 509) 0.976798
loop count = 10 , average run  26.577900 ms
"""

# airockchip/rknn_model_zoo@9bed8a5, "Expected Results" of examples/yolov8/README.md,
# examples/mobilenet/README.md and examples/resnet/README.md (the result lines only; the
# mobilenet one under a "-----TOP 5-----" header), and of examples/RetinaFace/README.md.
ZOO_README_YOLOV8 = """\
person @ (211 241 283 507) 0.873
person @ (109 235 225 536) 0.866
person @ (476 222 560 521) 0.863
bus @ (99 136 550 456) 0.859
person @ (80 326 116 513) 0.311
"""
ZOO_README_MOBILENET = """\
-----TOP 5-----
[494] score=0.990035 class=n03017168 chime, bell, gong
[469] score=0.003907 class=n02939185 caldron, cauldron
[653] score=0.001089 class=n03764736 milk can
[747] score=0.000945 class=n04023962 punching bag, punch bag, punching ball, punchball
[442] score=0.000712 class=n02825657 bell cote, bell cot
"""
ZOO_README_RESNET = """\
[155] score=0.794123 class=n02086240 Shih-Tzu
[154] score=0.183054 class=n02086079 Pekinese, Pekingese, Peke
[262] score=0.011264 class=n02112706 Brabancon griffon
[152] score=0.002242 class=n02085782 Japanese spaniel
[283] score=0.001936 class=n02123394 Persian cat
"""
ZOO_README_RETINAFACE = "face @(302 76 476 300) score=0.999512\n"

# airockchip/rknn-toolkit2#417 ("RK3588 error: failed to submit!", LTT-5, 2025-08-19): the current
# yolov8 demo on an OK3588 with an FP16 model. The stored copy of the thread ends inside the fifth
# output tensor line, so this is a capture cut short in the model information.
TK2_417_CUT_IN_TENSORS = """\
root@ok3588:/userdata/rknn_model_zoo/install/rk3588_linux_aarch64/rknn_yolov8_demo# ./rknn_yolov8_demo \
./model/yolov8.rknn ./model/bus.jpg
load lable ./model/coco_80_labels_list.txt
model input num: 1, output num: 9
input tensors:
  index=0, name=images, n_dims=4, dims=[1, 640, 640, 3], n_elems=1228800, size=2457600, fmt=NHWC, type=FP16, \
qnt_type=AFFINE, zp=0, scale=1.000000
output tensors:
  index=0, name=318, n_dims=4, dims=[1, 64, 80, 80], n_elems=409600, size=819200, fmt=NCHW, type=FP16, \
qnt_type=AFFINE, zp=0, scale=1.000000
  index=1, name=onnx::ReduceSum_326, n_dims=4, dims=[1, 80, 80, 80], n_elems=512000, size=1024000, fmt=NCHW, \
type=FP16, qnt_type=AFFINE, zp=0, scale=1.000000
  index=2, name=331, n_dims=4, dims=[1, 1, 80, 80], n_elems=6400, size=12800, fmt=NCHW, type=FP16, \
qnt_type=AFFINE, zp=0, scale=1.000000
  index=3, name=338, n_dims=4, dims=[1, 64, 40, 40], n_elems=102400, size=204800, fmt=NCHW, type=FP16, \
qnt_type=AFFINE, zp=0, scale=1.000000
  index=4, name=onnx::ReduceSum_346, n_dims=4, dims=[1, 80, 40, 40], n_elems=128000, si"""

# rockchip-linux/rknn-toolkit2#316 (comment by 133673, 2024-08-05): rknn_model_zoo 1.6.0's yolov8
# demo on a NanoPC-T6 (RK3588) with a model newer than its librknnrt; the stored copy of the
# thread ends inside the demo's own failure line.
TK2_316_INIT_FAILURE = """\
pi@NanoPC-T6-LTS:~/rk_zo/1.6/rknn_model_zoo-1.6.0/install/rk3588_linux_aarch64/rknn_yolov8_demo$ sudo \
./rknn_yolov8_demo model/yolov8.rknn model/bus.jpg
load lable ./model/coco_80_labels_list.txt
E RKNN: [16:40:58.701] 6, 1
E RKNN: [16:40:58.701] Invalid RKNN model version 6
E RKNN: [16:40:58.701] rknn_init, load model failed!
rknn_init fail! ret=-1
init_yolov8_model fail! ret=-1 model_path=m"""

# rockchip-linux/rknn-toolkit#440 ("rknn_init error ret=-5", chenzhu005774, 2024-03-14): the older
# rknpu2 demo on a Firefly RK3588 with librknnrt 1.6.0; librknnrt's E line comes between the demo's.
TK_440_OLD_DEMO_QUERY_ERROR = """\
root@firefly:/home/firefly/Desktop/rknpu2/examples/rknn_yolov5_demo/build# ./rknn_yolov5_demo \
../model/RK3588/yolov5s-640-640.rknn ../model/bus.jpg 
post process config: box_conf_threshold = 0.50, nms_threshold = 0.60
Read ../model/bus.jpg ...
img width = 640, img height = 640
Loading mode...
sdk version: 1.6.0 (9a7b5d24c@2023-12-13T17:31:11) driver version: 0.8.2
model input num: 1, output num: 3
E RKNN: [07:13:44.229] rknn_query, info_len(372) < sizeof(rknn_tensor_attr)(376)!
rknn_init error ret=-5
"""

# rockchip-linux/rknn-toolkit#54 ('run rknn/rknn_api/examples/rknn_yolov5_demo "Segmentation fault"',
# hhxdestiny, 2021-04-10): the RKNPU1 sibling of the older demo (RK1808 model), killed by a
# segfault after loading; quoted with the thread's stray backticks.
TK_54_SEGFAULT = """\
`debian10@debian10:~/rknpu/rknn/rknn_api/examples/rknn_yolov5_demo$ ./rknn_yolov5_demo  \
model/rk180x/yolov5s_relu_rk180x_out_opt.rknn model/test2.jpg
Read model/test2.jpg ...
img width = 1280, img height = 720
Loading mode...
[     1] HAL user version 6.4.3.5.293908
[     2] HAL kernel version 6.4.3.5.293908
Segmentation fault
`
"""

# how2flow/how2flow.github.io@dd226e9:_posts/2024/03/2024-03-19-yolov8-with-npu.md (ODROID-M1S,
# RK3566): the yolov8 demo started without ./lib on the library path, and the end of a run of the
# author's "bench" branch of the model zoo (which adds the "loop count" line), as pasted.
HOW2FLOW_MISSING_LIBRKNNRT = """\
  ./rknn_yolov8_demo: error while loading shared libraries: librknnrt.so: cannot open shared object file: \
No such file or directory
"""
HOW2FLOW_RUN_TAIL = """\
  ...
  rknn_run
  loop count = 10 average run 74.817000 ms
  write_image path: out.png width=640 height=640 channel=3 data=0x55a957e030
"""

# swdee/go-rknnlite@01cb137:example/yolov5/README.md: a Go port of the older demo. Its detection
# lines have the older demo's format; its version line, counts line and "Input tensors:" headers
# are its own, so this reads only partly (as it should).
GO_RKNNLITE_YOLOV5 = """\
Driver Version: 0.9.6, API Version: 2.3.0 (c949ad889d@2024-11-07T11:35:33)
Model Input Number: 1, Ouput Number: 3
Input tensors:
  index=0, name=images, n_dims=4, dims=[1, 640, 640, 3], n_elems=1228800, size=1228800, fmt=NHWC, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
Output tensors:
  index=0, name=output0, n_dims=4, dims=[1, 255, 80, 80], n_elems=1632000, size=1632000, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
  index=1, name=343, n_dims=4, dims=[1, 255, 40, 40], n_elems=408000, size=408000, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
  index=2, name=345, n_dims=4, dims=[1, 255, 20, 20], n_elems=102000, size=102000, fmt=NCHW, type=INT8, \
qnt_type=AFFINE, zp=-128, scale=0.003922
person @ (210 242 282 519) 0.831880
person @ (474 229 561 522) 0.805398
person @ (114 239 207 540) 0.788235
bus @ (90 135 553 459) 0.771211
person @ (78 331 122 519) 0.413103
Model first run speed: inference=33.508668ms, post processing=191.914µs, rendering=733.236µs, total time=34.433818ms
Saved object detection result to ../data/bus-yolov5-out.jpg
Benchmark count=100 warmup=5
inference: min=25.271571ms p50=25.550983ms p90=37.023769ms max=44.02043ms
done
"""

# rockchip.md §2 (DShanPi RK3576 log): librknnrt's complaint about a core mask, after which the
# program goes on.
E_CORE_MASK = ("E RKNN: [08:04:38.229] rknn_set_core_mask: unavailable core mask found for current platform! "
               "max core mask = 3")


def lines_until(text: str, last: str) -> str:
    """``text`` up to and including the line that starts with ``last`` (a cut of a real capture)."""
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line)
        if line.startswith(last):
            return "".join(out)
    raise AssertionError(f"no line starts with {last!r}")


def empty(**changes) -> dict:
    out = {"runtime_version": None, "driver_version": None, "inputs": [], "outputs": [], "detections": [],
           "classes": [], "complete": False, "cut_short": None, "errors": []}
    out.update(changes)
    return out


# --- real captures ----------------------------------------------------------------------------------------

def test_real_yolov8_run_is_complete_with_its_boxes_and_tensors():
    out = zd.parse(RADXA_YOLOV8)
    assert list(out) == list(zd.KEYS)
    assert out["detections"] == RADXA_YOLOV8_BOXES
    assert out["complete"] is True and out["cut_short"] is None and out["errors"] == []
    assert out["inputs"] == [{"name": "images", "dims": [1, 640, 640, 3], "type": "INT8"}]
    assert len(out["outputs"]) == 9
    assert out["outputs"][1] == {"name": "onnx::ReduceSum_326", "dims": [1, 80, 80, 80], "type": "INT8"}
    assert out["runtime_version"] is None and out["driver_version"] is None  # the current demos print none
    assert out["classes"] == []


def test_real_mobilenet_run_is_complete_after_its_five_class_lines():
    out = zd.parse(RADXA_MOBILENET)
    assert out["classes"][0] == {"class": 494, "score": 0.993227, "label": "n03017168 chime, bell, gong"}
    assert [c["class"] for c in out["classes"]] == [494, 469, 747, 792, 618]
    assert out["classes"][2]["label"] == "n04023962 punching bag, punch bag, punching ball, punchball"
    assert out["outputs"] == [{"name": "output", "dims": [1, 1000], "type": "INT8"}]  # n_dims=2 of [1, 1000, 0, 0]
    assert out["complete"] is True and out["cut_short"] is None and out["errors"] == []
    assert out["detections"] == []


def test_real_retinaface_run_reads_its_face_line_and_shrugs_off_librgas_complaints():
    out = zd.parse(RADXA_RETINAFACE)
    assert out["detections"] == [{"label": "face", "box": [302, 72, 476, 296], "score": 0.999023}]
    assert out["complete"] is True and out["errors"] == []
    assert [o["dims"] for o in out["outputs"]] == [[1, 4200, 4], [1, 4200, 2], [1, 4200, 10]]
    assert [o["type"] for o in out["outputs"]] == ["INT8", "FP16", "INT8"]


def test_real_older_demo_run_with_sdk_version_and_no_tensor_headers():
    out = zd.parse(KHADAS_EDGE2_OLD_DEMO)
    assert (out["runtime_version"], out["driver_version"]) == ("1.3.0", "0.7.2")
    assert out["inputs"] == [{"name": "images", "dims": [1, 640, 640, 3], "type": "INT8"}]
    # n_dims=5 but only four dims printed: the four are kept
    assert [(o["name"], o["dims"]) for o in out["outputs"]] == [
        ("output", [1, 3, 85, 80]), ("371", [1, 3, 85, 40]), ("390", [1, 3, 85, 20])]
    assert out["detections"][0] == {"label": "person", "box": [474, 250, 559, 523], "score": 0.996784}
    assert [d["label"] for d in out["detections"]] == ["person", "person", "bus", "person"]
    assert out["complete"] is True and out["cut_short"] is None and out["errors"] == []


def test_real_readme_result_lines_are_detections_of_a_run_not_yet_ended():
    out = zd.parse(ZOO_README_YOLOV8)
    assert out["detections"][3] == {"label": "bus", "box": [99, 136, 550, 456], "score": 0.859}
    assert len(out["detections"]) == 5
    assert out["complete"] is False
    assert out["cut_short"] == ("ends after 5 detections, before the end of the run "
                                "('write_image path: ...' or 'loop count = ...')")


def test_real_readme_classes_with_and_without_the_top5_header():
    mobilenet, resnet = zd.parse(ZOO_README_MOBILENET), zd.parse(ZOO_README_RESNET)
    assert mobilenet["classes"][0] == {"class": 494, "score": 0.990035, "label": "n03017168 chime, bell, gong"}
    assert resnet["classes"][1] == {"class": 154, "score": 0.183054, "label": "n02086079 Pekinese, Pekingese, Peke"}
    assert mobilenet["complete"] is True and resnet["complete"] is True


def test_real_readme_face_line():
    out = zd.parse(ZOO_README_RETINAFACE)
    assert out["detections"] == [{"label": "face", "box": [302, 76, 476, 300], "score": 0.999512}]
    assert out["complete"] is False


def test_real_capture_cut_inside_the_tensor_list_says_how_far_it_got():
    out = zd.parse(TK2_417_CUT_IN_TENSORS)
    assert out["inputs"] == [{"name": "images", "dims": [1, 640, 640, 3], "type": "FP16"}]
    assert len(out["outputs"]) == 4  # the fifth line is cut before its fmt/type
    assert out["complete"] is False and out["errors"] == []
    assert out["cut_short"] == "ends in the model information (4 of 9 output tensors), before inference ('rknn_run')"


def test_real_init_failure_keeps_librknnrts_lines_and_the_demos():
    out = zd.parse(TK2_316_INIT_FAILURE)
    assert out["errors"] == [
        "E RKNN: [16:40:58.701] 6, 1",
        "E RKNN: [16:40:58.701] Invalid RKNN model version 6",
        "E RKNN: [16:40:58.701] rknn_init, load model failed!",
        "rknn_init fail! ret=-1",
        "init_yolov8_model fail! ret=-1 model_path=m",
    ]
    assert out["complete"] is False and out["cut_short"] is None  # the failure says why it stopped
    assert out["inputs"] == [] and out["detections"] == []


def test_real_older_demo_failure_after_an_interleaved_e_rknn_line():
    out = zd.parse(TK_440_OLD_DEMO_QUERY_ERROR)
    assert (out["runtime_version"], out["driver_version"]) == ("1.6.0", "0.8.2")
    assert out["errors"] == ["E RKNN: [07:13:44.229] rknn_query, info_len(372) < sizeof(rknn_tensor_attr)(376)!",
                             "rknn_init error ret=-5"]
    assert out["complete"] is False and out["cut_short"] is None


def test_real_segfault_is_a_failure():
    out = zd.parse(TK_54_SEGFAULT)
    assert out["errors"] == ["Segmentation fault"]
    assert out["complete"] is False and out["cut_short"] is None
    assert len(zd.runs(TK_54_SEGFAULT)) == 1  # the echoed command does not start a second run


def test_real_missing_runtime_library_is_a_failure():
    out = zd.parse(HOW2FLOW_MISSING_LIBRKNNRT)
    assert out == empty(errors=["error while loading shared libraries: librknnrt.so: cannot open shared object "
                                "file: No such file or directory"])


def test_real_run_end_with_the_loop_count_line_of_a_fork_is_complete():
    out = zd.parse(HOW2FLOW_RUN_TAIL)
    assert out["complete"] is True and out["detections"] == []


def test_real_go_port_reads_only_partly():
    out = zd.parse(GO_RKNNLITE_YOLOV5)
    assert out["detections"][0] == {"label": "person", "box": [210, 242, 282, 519], "score": 0.83188}
    assert [d["label"] for d in out["detections"]] == ["person", "person", "person", "bus", "person"]
    # its "Driver Version: ..., API Version: ..." line is no demo's
    assert out["runtime_version"] is None and out["driver_version"] is None
    # no headers the parser knows, no counts: the index restarting at 0 starts the outputs
    assert [t["name"] for t in out["inputs"]] == ["images"]
    assert [t["name"] for t in out["outputs"]] == ["output0", "343", "345"]
    assert out["complete"] is False  # none of its lines is a demo's end
    assert out["cut_short"].startswith("ends after 5 detections")


# --- captures built from the real ones ------------------------------------------------------------------

def serial(text: str) -> str:
    """``text`` as a serial console gives it: CR CR LF line ends and a coloured prompt."""
    text = text.replace("$ ./rknn_", "\x1b[01;32mroot@rk3576\x1b[00m:\x1b[01;34m~\x1b[00m# ./rknn_")
    return text.replace("\n", "\r\r\n")


@pytest.mark.parametrize("text", [RADXA_YOLOV8, RADXA_MOBILENET, KHADAS_EDGE2_OLD_DEMO, TK2_316_INIT_FAILURE])
def test_constructed_crlf_and_ansi_read_the_same(text):
    # CONSTRUCTED: the real capture with CR CR LF line ends and an ANSI-coloured root prompt
    noisy = serial(text)
    assert "\r" in noisy
    assert zd.parse(noisy) == zd.parse(text)


def test_constructed_e_rknn_lines_between_and_after_the_demos_lines():
    # CONSTRUCTED: RADXA_YOLOV8 with librknnrt's core-mask complaint after the input tensor line,
    # and the same line glued after a detection (stderr written before stdout's line end)
    text = RADXA_YOLOV8.replace("output tensors:\n", E_CORE_MASK + "\noutput tensors:\n")
    text = text.replace("bus @ (96 136 549 449) 0.864\n", "bus @ (96 136 549 449) 0.864" + E_CORE_MASK + "\n")
    out = zd.parse(text)
    assert out["errors"] == [E_CORE_MASK, E_CORE_MASK]
    assert out["detections"] == RADXA_YOLOV8_BOXES
    assert len(out["outputs"]) == 9
    assert out["complete"] is True  # librknnrt complained; the demo went on to its end


def test_constructed_runtime_information_lines_give_the_versions():
    # CONSTRUCTED: RADXA_YOLOV8 run with RKNN_LOG_LEVEL set, librknnrt's version lines (form of
    # rockchip-linux/rknn-toolkit2#320) before the demo's first line
    info = ("I RKNN: [17:19:24.679] RKNN Runtime Information, librknnrt version: 2.3.2 "
            "(429f97ae6b@2025-04-09T09:09:27)\n"
            "I RKNN: [17:19:24.690] RKNN Driver Information, version: 0.9.8\n")
    out = zd.parse(RADXA_YOLOV8.replace("load label", info + "load label"))
    assert (out["runtime_version"], out["driver_version"]) == ("2.3.2", "0.9.8")
    assert out["errors"] == [] and out["complete"] is True


@pytest.mark.parametrize("cut, where", [
    ("person @ (211 241 282 506)", "ends after 1 detections, before the end of the run "
                                   "('write_image path: ...' or 'loop count = ...')"),
    ("rknn_run", "ends after 'rknn_run', before any result line or 'write_image path: ...'"),
    ("rga_api version", "ends while the image is prepared, before inference ('rknn_run')"),
    ("model input height", "ends after the model information, before inference ('rknn_run')"),
    ("load label", "ends before the model information ('model input num: ...')"),
])
def test_constructed_cuts_of_a_detection_run_say_where_they_end(cut, where):
    # CONSTRUCTED: RADXA_YOLOV8 cut after the line named
    out = zd.parse(lines_until(RADXA_YOLOV8, cut))
    assert out["complete"] is False and out["errors"] == []
    assert out["cut_short"] == where


def test_constructed_classifier_cut_after_three_classes_keeps_them():
    # CONSTRUCTED: RADXA_MOBILENET cut after its third class line
    out = zd.parse(lines_until(RADXA_MOBILENET, "[747]"))
    assert [c["class"] for c in out["classes"]] == [494, 469, 747]
    assert out["complete"] is False and out["cut_short"] == "ends after 3 of 5 class lines"


def test_constructed_cut_keeps_the_boxes_it_has():
    # CONSTRUCTED: RADXA_YOLOV8 cut after its third detection
    out = zd.parse(lines_until(RADXA_YOLOV8, "person @ (109 235 225 535)"))
    assert out["detections"] == RADXA_YOLOV8_BOXES[:3]
    assert out["cut_short"].startswith("ends after 3 detections")


def test_constructed_usage_line_is_a_failure_not_a_command():
    # CONSTRUCTED: main()'s "%s <model_path> <image_path>" for a call without the image path
    text = ("root@rk3576:~/rknn_yolov5_demo# ./rknn_yolov5_demo model/yolov5.rknn\n"
            "./rknn_yolov5_demo <model_path> <image_path>\n")
    assert zd.runs(text) == [empty(errors=["./rknn_yolov5_demo <model_path> <image_path>"])]


def test_constructed_missing_label_file_fails_the_run_though_it_ends():
    # CONSTRUCTED: RADXA_YOLOV8 as postprocess.cc prints it without the label file: readLines'
    # "Open %s fail!", then every label "null" (coco_cls_to_name)
    labels = "load label ./model/coco_80_labels_list.txt\n"
    text = RADXA_YOLOV8.replace(labels, labels + "Open ./model/coco_80_labels_list.txt fail!\n")
    text = text.replace("person @", "null @").replace("bus @", "null @")
    out = zd.parse(text)
    assert out["errors"] == ["Open ./model/coco_80_labels_list.txt fail!"]
    assert {d["label"] for d in out["detections"]} == {"null"}
    assert out["complete"] is False and out["cut_short"] is None


@pytest.mark.parametrize("line", [
    "read image fail! ret=-1 image_path=model/missing.jpg",
    "rknn_run fail! ret=-1",
    "rknn_outputs_get fail! ret=-3",
    "Killed",
    "bash: ./rknn_yolov5_demo: No such file or directory",
])
def test_constructed_failures_after_the_model_information(line):
    # CONSTRUCTED: RADXA_YOLOV8 up to "rga_api version", then one failure (the demo's printf or the shell's)
    out = zd.parse(lines_until(RADXA_YOLOV8, "rga_api version") + line + "\n")
    assert out["errors"] == [line[line.index("rknn_yolov5_demo:"):] if line.startswith("bash:") else line]
    assert out["complete"] is False and out["cut_short"] is None


def test_constructed_two_runs_in_one_capture():
    # CONSTRUCTED: the yolov8 run and then the mobilenet run, one after the other in one session
    found = zd.runs(RADXA_YOLOV8 + RADXA_MOBILENET)
    assert len(found) == 2
    assert found[0]["detections"] == RADXA_YOLOV8_BOXES and found[0]["classes"] == []
    assert found[1]["classes"][0]["class"] == 494 and found[1]["detections"] == []
    assert zd.parse(RADXA_YOLOV8 + RADXA_MOBILENET) == found[0]


def test_text_that_is_no_demo_output():
    out = zd.parse(NO_CAPTURE)
    assert out == empty(cut_short="holds no rknn_model_zoo demo output")


# --- iou ------------------------------------------------------------------------------------------------------

def test_iou_arithmetic():
    assert zd.iou([91, 129, 555, 464], [91, 129, 555, 464]) == 1.0
    assert zd.iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0  # disjoint
    assert zd.iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching: continuous coordinates, no shared area
    assert zd.iou([0, 0, 10, 10], [0, 0, 10, 5]) == 0.5  # one half of the other
    assert zd.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)  # shifted by half: 50 / 150
    assert zd.iou([0, 0, 10, 10], [5, 0, 15, 10]) == zd.iou([5, 0, 15, 10], [0, 0, 10, 10])
    assert zd.iou((0, 0, 100, 100), (0, 0, 100, 94.96)) == pytest.approx(0.9496)


def test_iou_of_a_box_without_area_is_zero():
    assert zd.iou([5, 5, 5, 9], [0, 0, 10, 10]) == 0.0
    assert zd.iou([5, 5, 5, 9], [5, 5, 5, 9]) == 0.0
    assert zd.iou([9, 9, 1, 1], [0, 0, 10, 10]) == 0.0  # right < left


@pytest.mark.parametrize("box", [[1, 2, 3], [1, 2, 3, "4"], [True, 0, 1, 1], None, "1234"])
def test_iou_refuses_what_is_no_box(box):
    with pytest.raises(ValueError):
        zd.iou(box, [0, 0, 1, 1])


# --- match ----------------------------------------------------------------------------------------------------

README_YOLOV8 = zd.parse(ZOO_README_YOLOV8)["detections"]


def test_match_real_readme_against_a_real_board_run():
    # the model zoo's expected yolov8 boxes against Radxa's board run of the same demo and picture
    assert zd.match(README_YOLOV8, RADXA_YOLOV8_BOXES, 0.95) == []
    assert zd.match(README_YOLOV8, RADXA_YOLOV8_BOXES, 0.98) == [
        "expected person @ (476 222 560 521): best person @ (477 226 560 522) IoU 0.97 < 0.98",
        "expected bus @ (99 136 550 456): best bus @ (96 136 549 449) IoU 0.97 < 0.98",
        "expected person @ (80 326 116 513): best person @ (79 327 116 513) IoU 0.97 < 0.98",
    ]


def test_match_names_what_was_seen_when_a_label_is_missing():
    expected = [{"label": "dog", "box": [10, 20, 30, 40]}]
    assert zd.match(expected, RADXA_YOLOV8_BOXES, 0.5) == [
        "expected dog @ (10 20 30 40): not detected (labels seen: bus, person)"]
    assert zd.match(expected, [], 0.5) == ["expected dog @ (10 20 30 40): not detected (nothing detected)"]


def test_match_uses_each_actual_detection_once():
    bus = {"label": "bus", "box": [99, 136, 550, 456]}
    problems = zd.match([bus, bus], RADXA_YOLOV8_BOXES, 0.9)
    assert problems == ["expected bus @ (99 136 550 456): each bus detected matches another expected bus "
                        "(best bus @ (96 136 549 449), IoU 0.97, matches expected bus @ (99 136 550 456))"]


def test_match_is_greedy_by_best_iou():
    # the first expected box overlaps both actual ones; the better pair is taken first, so the
    # second expected box still finds its own
    expected = [{"label": "person", "box": [0, 0, 10, 10]}, {"label": "person", "box": [0, 0, 10, 9]}]
    actual = [{"label": "person", "box": [0, 0, 10, 9], "score": 0.9},
              {"label": "person", "box": [0, 0, 10, 10], "score": 0.8}]
    assert zd.match(expected, actual, 0.95) == []
    assert zd.match(expected, actual[:1], 0.95) == [
        "expected person @ (0 0 10 10): each person detected matches another expected person "
        "(best person @ (0 0 10 9), IoU 0.90, matches expected person @ (0 0 10 9))"]


def test_match_shows_enough_digits_to_tell_the_iou_from_the_limit():
    problems = zd.match([{"label": "cup", "box": [0, 0, 100, 100]}],
                        [{"label": "cup", "box": [0, 0, 100, 94.96], "score": 0.5}], 0.95)
    assert problems == ["expected cup @ (0 0 100 100): best cup @ (0 0 100 94.96) IoU 0.9496 < 0.9500"]


def test_match_reports_extra_detections_only_when_asked():
    persons = [d for d in README_YOLOV8 if d["label"] == "person" and d["box"][0] != 80]
    assert zd.match(persons, RADXA_YOLOV8_BOXES, 0.9) == []
    assert zd.match(persons, RADXA_YOLOV8_BOXES, 0.9, extra_score=0.5) == [
        "unexpected bus @ (96 136 549 449) 0.864: no expected bus there (score >= 0.5)"]
    assert len(zd.match(persons, RADXA_YOLOV8_BOXES, 0.9, extra_score=0.3)) == 2  # the 0.306 person too


def test_match_takes_detection_objects_and_refuses_bad_input():
    exp = [zd.Detection("bus", (99, 136, 550, 456))]
    act = [zd.Detection.of(d) for d in RADXA_YOLOV8_BOXES]
    assert zd.match(exp, act, 0.9) == []
    assert str(act[1]) == "bus @ (96 136 549 449)" and act[1].as_dict() == RADXA_YOLOV8_BOXES[1]
    for bad in (0, 1.5, True, "0.9"):
        with pytest.raises(ValueError):
            zd.match(exp, act, bad)
    with pytest.raises(ValueError):
        zd.match([{"label": "bus"}], act, 0.9)


# --- argv -----------------------------------------------------------------------------------------------------

def test_argv_is_model_then_image():
    assert zd.argv("model/yolov5.rknn", "model/bus.jpg") == ["model/yolov5.rknn", "model/bus.jpg"]


@pytest.mark.parametrize("model, image", [("", "bus.jpg"), ("m.rknn", ""), ("  ", "bus.jpg"), (None, "bus.jpg"),
                                          ("m.rknn", None)])
def test_argv_refuses_empty_paths(model, image):
    with pytest.raises(ValueError):
        zd.argv(model, image)


# --- hil parse zoo-demo ----------------------------------------------------------------------------------------

def test_cli_through_hil_main(tmp_path, capsys):
    out, err = hil_parse(capsys, "zoo-demo", tmp_path / "demo.log", serial(RADXA_YOLOV8).encode())
    assert list(out) == list(zd.KEYS)
    assert out == zd.parse(RADXA_YOLOV8)
    assert err == ""


def test_cli_warns_on_text_that_is_no_demo_output(tmp_path, capsys):
    path = tmp_path / "other.log"
    out, err = hil_parse(capsys, "zoo-demo", path, NO_CAPTURE)
    assert out == empty(cut_short="holds no rknn_model_zoo demo output")
    assert err.startswith(f"warning: {path} does not look like rknn_model_zoo demo output")


def test_cli_says_when_a_capture_holds_several_runs(tmp_path, capsys):
    path = tmp_path / "two.log"
    out, err = hil_parse(capsys, "zoo-demo", path, RADXA_YOLOV8 + RADXA_MOBILENET)
    assert out["detections"] == RADXA_YOLOV8_BOXES
    assert err == (f"warning: {path} holds 2 runs of a model zoo demo; the JSON is the first "
                   f"(hil.rockchip.zoo_demo.runs reads them all)\n")


def test_cli_missing_file(tmp_path, capsys):
    check_missing_file(tmp_path, capsys, "zoo-demo")


def test_cli_subprocess_reads_stdin():
    out = hil_parse_stdin("zoo-demo", TK2_316_INIT_FAILURE, zd.KEYS)
    assert out["complete"] is False and out["cut_short"] is None
    assert out["errors"][-1] == "init_yolov8_model fail! ret=-1 model_path=m"
