"""hil.rockchip.checks: each configuration check on its own, ModelInfo from a real model.json, and
agreement with what the demo stand-ins do with the same configuration."""

from __future__ import annotations

import json

import attr
import pytest

from hil.rockchip import checks, rkllm_log
from hil.rockchip.checks import BoardInfo, ConfigProblem, DemoBuild, ModelInfo, RunConfig
from hil.twin import models
from selftest.unit import test_standins as standin
from selftest.unit.test_rockchip_rkllm_log import board, kit, needs_busybox  # noqa: F401

RK3576 = BoardInfo()
GOOD_MODEL = ModelInfo(name="m", target_platform="RK3576", npu_core_num=2, max_context_limit=4096, embed_size=1536,
                       image_tokens=196)
GOOD_RUN = RunConfig(max_context_len=512, max_new_tokens=128, prompt_tokens=27, image_tokens=196, rknn_core_num=2)
DEMO_121 = DemoBuild.for_version("1.2.1")


def names(problems: list[ConfigProblem]) -> list[str]:
    return [p.check for p in problems]


def test_model_info_from_the_model_json_the_twin_writes(tmp_path):
    directory = models.write_model(tmp_path, "qwen2-vl-2b-w8a8-rk3588")
    info = ModelInfo.from_json(json.loads((directory / "model.json").read_text()))
    assert info == ModelInfo(name="qwen2-vl-2b-w8a8-rk3588", target_platform="RK3588", npu_core_num=3,
                             max_context_limit=4096, embed_size=1536, image_tokens=196)
    assert ModelInfo.from_json({"name": "bare"}) == ModelInfo(name="bare")


def test_a_good_configuration_has_no_problem():
    assert checks.check_run(RK3576, GOOD_MODEL, GOOD_RUN, DEMO_121) == []
    assert checks.CHECKS == ("target_platform", "npu_core_num", "rknn_core_num", "max_context_limit",
                             "context_budget", "embed_size")


@pytest.mark.parametrize("model, run, demo, check, words", [
    ({"target_platform": "RK3588"}, {}, None, "target_platform", ["RK3588", "RK3576", "target_platform='rk3576'"]),
    ({"target_platform": "rk3588"}, {}, None, "target_platform", ["RK3588"]),
    ({"npu_core_num": 3}, {}, None, "npu_core_num", ["3 NPU cores", "has 2", "num_npu_core=2"]),
    ({}, {"rknn_core_num": 3}, None, "rknn_core_num", ["mask 7", "max mask 3", "rknn_core_num 2"]),
    ({}, {"max_context_len": 16384, "max_new_tokens": 2048}, None, "max_context_limit",
     ["16384", "max_context_limit 4096", "at most 4096"]),
    ({}, {"max_context_len": 300}, None, "context_budget", ["27 + image 196 + max_new_tokens 128 = 351", "300"]),
    ({"embed_size": 2048}, {}, None, "embed_size", ["1.2.1 demo", "EMBED_SIZE 1536", "2048", "segfaults"]),
    ({"embed_size": 1024}, {}, None, "embed_size", ["wrong image embeddings"]),
])
def test_each_check(model, run, demo, check, words):
    problems = checks.check_run(RK3576, attr.evolve(GOOD_MODEL, **model), attr.evolve(GOOD_RUN, **run),
                                demo or DEMO_121)
    assert names(problems) == [check]
    for word in words:
        assert word in problems[0].message


def test_checks_that_do_not_apply_are_skipped():
    unknown = ModelInfo()
    run = RunConfig(max_context_len=4096, max_new_tokens=2048, rknn_core_num=None)
    assert checks.check_run(RK3576, unknown, run, DemoBuild.for_version("1.2.3")) == []
    assert checks.check_run(RK3576, attr.evolve(GOOD_MODEL, embed_size=3584), GOOD_RUN, DemoBuild()) == [], (
        "a demo that reads the size from the tensor adapts")


def test_text_runs_and_pictures_of_unknown_size():
    text = attr.evolve(GOOD_RUN, max_context_len=200, image_tokens=0)
    assert checks.check_run(RK3576, GOOD_MODEL, text, DEMO_121) == []
    unknown = attr.evolve(GOOD_RUN, max_context_len=300, image_tokens=None)
    message = checks.check_run(RK3576, attr.evolve(GOOD_MODEL, image_tokens=289), unknown, DEMO_121)[0].message
    assert "image 289" in message, "the model's own image tokens"
    assert "image 196" in checks.check_run(RK3576, ModelInfo(), unknown, DEMO_121)[0].message


def test_an_rk3588_board_takes_core_num_3():
    rk3588 = BoardInfo(soc="RK3588", npu_cores=3)
    model = attr.evolve(GOOD_MODEL, target_platform="RK3588", npu_core_num=3)
    assert checks.check_run(rk3588, model, attr.evolve(GOOD_RUN, rknn_core_num=3), DEMO_121) == []


def test_core_mask_and_demo_builds():
    assert [checks.core_mask(n) for n in (0, 1, 2, 3, 4)] == [0, 0, 3, 7, 0]
    assert [DemoBuild.for_version(v).embed_size for v in ("1.1.4", "1.2.0", "1.2.1", "1.2.2", "1.3.0")] == [
        1536, 1536, 1536, None, None]


# --- the checks predict what the stand-ins do -------------------------------------------------

CASES = {  # name: (demo version, model, demo_args overrides, expected checks, what the transcript shows)
    "good": ("1.2.3", standin.M2B, {}, [], "ok"),
    "rk3588 model": ("1.2.1", standin.M3588, {}, ["target_platform", "npu_core_num"], "init failed"),
    "context above limit": ("1.2.1", standin.M2B, {"max_new": 2048, "max_ctx": 16384}, ["max_context_limit"],
                            "init failed"),
    "prompt does not fit": ("1.2.1", standin.M2B, {"max_ctx": 200}, ["context_budget"], "run error"),
    "core num 3": ("1.2.3", standin.M2B, {"core": 3}, ["rknn_core_num"], "core mask"),
    "3b encoder, 1.2.1 demo": ("1.2.1", standin.M3B, {}, ["embed_size"], "segfault"),
    "3b encoder, 1.2.3 demo": ("1.2.3", standin.M3B, {}, [], "ok"),
}


@needs_busybox
@pytest.mark.parametrize("case", list(CASES))
def test_checks_agree_with_the_standins(kit, board, case):
    version, model, overrides, expected, outcome = CASES[case]
    args = standin.demo_args(kit, version, model, **overrides)
    info = ModelInfo.from_json(json.loads((kit.models / model / "model.json").read_text()))
    run = RunConfig(max_context_len=args[4], max_new_tokens=args[3], prompt_tokens=27, image_tokens=196,
                    rknn_core_num=args[5])
    assert names(checks.check_run(RK3576, info, run, DemoBuild.for_version(version))) == expected

    r = standin.run(kit, board, version, "demo", args, stdin="0\nexit\n")
    log = rkllm_log.parse(r.out)
    if outcome == "ok":
        assert r.rc == 0 and log["errors"] == [] and len(log["runs"]) == 1
    elif outcome == "init failed":
        assert r.rc == 255 and log["errors"][-1] == "rkllm init failed"
    elif outcome == "run error":
        assert log["errors"][-1] == "\\run error" and log["runs"] == []
    elif outcome == "core mask":
        assert log["errors"][0].endswith("max core mask = 3")
    else:
        assert r.rc == 139
