"""hil.rockchip.demo_log against the demo formats of rockchip.md §3.3 and the stand-ins' transcripts."""

from __future__ import annotations

import pytest

from hil.kit import pictures
from hil.rockchip import demo_log
from hil.rockchip.demo_log import TensorAttr, Turn
from hil.twin import models
from selftest.unit import test_standins as standin
from selftest.unit.test_rockchip_rkllm_log import TABLE_11X, TABLE_121, board, kit, needs_busybox  # noqa: F401

IMGENC_121 = """===the core num is 3===
model input num: 1, output num: 1
input tensors:
  index=0, name=pixel, n_dims=4, dims=[1, 392, 392, 3], n_elems=460992, size=921984, fmt=NHWC, type=FP16, qnt_type=AFFINE, zp=0, scale=1.000000
output tensors:
  index=0, name=34548, n_dims=2, dims=[196, 2048, 0, 0], n_elems=401408, size=802816, fmt=UNDEFINED, type=FP16, qnt_type=AFFINE, zp=0, scale=1.000000
model input height=392, width=392, channel=3
main: Model loaded in  4921.70 ms
main: Encoder the image cost  2870.12 ms
"""

MENU = """
**********************可输入以下问题对应序号获取回答/或自定义输入********************

[0] <image>What is in the image?
[1] <image>这张图片中有什么？

*************************************************************************

"""
README_ANSWER = ("The image depicts an astronaut on the moon, enjoying a beer. The background shows the Earth and "
                 "stars, creating a surreal and futuristic scene.")

DEMO_122 = ("I rkllm: rkllm-runtime version: 1.2.2, rknpu driver version: 0.9.8, platform: RK3576\n"
            "rkllm init success\n"
            "main: LLM Model loaded in  5482.81 ms\n"
            + IMGENC_121.replace("3===", "2===").replace("main: Model loaded in  4921.70 ms\nmain: Encoder the image "
                                                         "cost  2870.12 ms\n", "")
            + "main: ImgEnc Model loaded in  4740.33 ms\n"
            "main: ImgEnc Model inference took  2870.50 ms\n"
            + MENU + "\nuser: <image>What is in the image?\nrobot: " + README_ANSWER + "\n" + TABLE_121 + "\nuser: ")


def test_imgenc_transcript():
    log = demo_log.parse(IMGENC_121)
    assert (log.core_num, log.model_loaded_ms, log.encoder_ms) == (3, 4921.70, 2870.12)
    assert log.inputs == [TensorAttr(0, "pixel", (1, 392, 392, 3), "NHWC", "FP16")]
    assert log.outputs == [TensorAttr(0, "34548", (196, 2048), "UNDEFINED", "FP16")]
    assert (log.image_height, log.image_width, log.image_tokens, log.embed_size) == (392, 392, 196, 2048)
    assert log.llm_loaded_ms is None and log.rkllm_init_ok is None and log.turns == []


def test_image_size_from_an_nchw_input_without_the_height_line():
    text = IMGENC_121.replace("dims=[1, 392, 392, 3]", "dims=[1, 3, 448, 476]").replace("NHWC", "NCHW")
    text = text.replace("model input height=392, width=392, channel=3\n", "")
    log = demo_log.parse(text)
    assert (log.image_height, log.image_width) == (448, 476)
    assert log.inputs[0].fmt == "NCHW"


def test_demo_transcript():
    log = demo_log.parse(DEMO_122)
    assert log.rkllm_init_ok is True
    assert (log.llm_loaded_ms, log.encoder_loaded_ms, log.encoder_ms, log.core_num) == (5482.81, 4740.33, 2870.50, 2)
    assert log.model_loaded_ms is None
    assert (log.image_tokens, log.embed_size) == (196, 2048)
    assert log.turns == [Turn("<image>What is in the image?", README_ANSWER)]


def test_init_failed():
    log = demo_log.parse("E rkllm: invalid rkllm model!\nrkllm init failed\n")
    assert log.rkllm_init_ok is False


def test_turns_of_a_dialogue():
    text = (MENU
            + "\nuser: 以咏梅为题目，帮我写一首古诗，要求包含梅花、白雪等元素。\nrobot: 《咏梅》\n白雪纷飞压翠枝，\n\n梅花独放傲寒时。\n"
            + "\nuser: clear\n"  # no answer: not a turn
            + "\nuser: robot: E rkllm: prompt gather than max context (prompt: 1299 tokens, max context: 1020)\n"
              "\\run error\n"
            + "\nuser: robot: First line.\n"
            + "I RKNN: [08:04:38.229] RKNN Driver Information, version: 0.9.8\nSecond line.\n"  # a log line between
            + "\nuser: robot: Half an answerE RKNN: [08:04:38.229] rknn_run: failed\n and the rest.\n"  # and inside
            + "\nuser: robot: Paris.\n" + TABLE_11X  # 1.1.x: the table has no prefix
            + "\nuser: ")
    assert demo_log.split_turns(text) == [
        Turn("以咏梅为题目，帮我写一首古诗，要求包含梅花、白雪等元素。", "《咏梅》\n白雪纷飞压翠枝，\n\n梅花独放傲寒时。"),
        Turn("", "", failed=True),
        Turn("", "First line.\nSecond line."),
        Turn("", "Half an answer and the rest."),
        Turn("", "Paris."),
    ]


def test_serial_capture_with_an_echoed_menu_number():
    """On a terminal the typed ``0`` is echoed before the demo prints its canned prompt."""
    text = ("\x1b[0m" + MENU.replace("\n", "\r\n") + "\r\nuser: 0\r\n<image>What is in the image?\r\n"
            "robot: " + README_ANSWER + "\r\n" + TABLE_121.replace("\n", "\r\n") + "\r\nuser: exit\r\n"
            "\x1b[01;32mroot@rk3576\x1b[00m:~# ")
    assert demo_log.split_turns(text) == [Turn("<image>What is in the image?", README_ANSWER)]


# --- the stand-ins ----------------------------------------------------------------------------


def answer(kit, version, prompt, picture=None):
    return standin.expected_answer(kit, standin.M2B, prompt, version, picture)


@needs_busybox
@pytest.mark.parametrize("version", ["1.2.1", "1.2.3", "1.3.0"])
def test_standin_demo(kit, board, version):
    question = "What is the capital of France?"
    r = standin.run(kit, board, version, "demo", standin.demo_args(kit, version),
                    stdin=f"0\nclear\n1\n{question}\nexit\n")
    assert r.rc == 0, r.err
    log = demo_log.parse(r.out)
    assert log.turns == [
        Turn(models.EN_IMAGE_PROMPT, answer(kit, version, models.EN_IMAGE_PROMPT, "house.png")),
        Turn(models.ZH_IMAGE_PROMPT, answer(kit, version, models.ZH_IMAGE_PROMPT, "house.png")),
        Turn("", answer(kit, version, question)),  # typed input is not echoed on a pipe
    ]
    assert log.rkllm_init_ok is True
    assert log.llm_loaded_ms == standin.figure(r.out, "LLM Model loaded")
    assert log.encoder_loaded_ms == standin.figure(r.out, "ImgEnc Model loaded")
    if version >= "1.2.2":
        assert log.encoder_ms == standin.figure(r.out, "ImgEnc Model inference")
    else:
        assert log.encoder_ms is None
    assert (log.core_num, log.image_height, log.image_width, log.image_tokens, log.embed_size) == (
        2, 392, 392, 196, 1536)


@needs_busybox
def test_standin_imgenc_of_the_3b_encoder(kit, board, tmp_path):
    r = standin.run(kit, board, "1.2.3", "imgenc", [kit.vision(standin.M3B), pictures.PICTURES_DIR / "cat.png", 2],
                    cwd=tmp_path)
    assert r.rc == 0, r.err
    log = demo_log.parse(r.out)
    assert (log.image_tokens, log.embed_size, log.core_num) == (196, 2048, 2)
    assert log.model_loaded_ms == standin.figure(r.out, "Model loaded")
    assert log.encoder_ms == standin.figure(r.out, "Encoder the image")


@needs_busybox
def test_standin_llm_menu_and_a_failed_run(kit, board):
    board.driver("0.9.6")  # the runtime warns, then every matmul fails
    r = standin.run(kit, board, "1.2.1", "llm", [kit.llm(standin.M2B), 128, 512], stdin="2\nexit\n")
    log = demo_log.parse(r.out)
    assert log.model_loaded_ms == standin.figure(r.out, "Model loaded")
    assert log.turns == [Turn("上联: 江边惯看千帆过", "", failed=True)]
