"""hil.rockchip.checks: each configuration check on its own, ModelInfo from the model's files and
the runtime's init lines, and agreement with what the demo stand-ins do with the same configuration."""

from __future__ import annotations

import shutil

import attr
import pytest

from hil.kit import bundle
from hil.rockchip import checks, rkllm_log
from hil.rockchip.checks import BoardInfo, ConfigProblem, DemoBuild, ModelInfo, RunConfig
from hil.suite.inference import ModelProbe, demo_build
from hil.twin.runtimelibs import runtime_library
from hil.twin import models
from selftest.unit import test_standins as standin
from selftest.unit.test_rockchip_rkllm_log import needs_busybox
from selftest.unit.test_standins import board, kit  # noqa: F401

RK3576 = BoardInfo()
GOOD_MODEL = ModelInfo(name="m", target_platform="RK3576", npu_core_num=2, max_context_limit=4096, embed_size=1536,
                       image_tokens=196)
GOOD_RUN = RunConfig(max_context_len=512, max_new_tokens=128, prompt_tokens=27, image_tokens=196, rknn_core_num=2)
DEMO_121 = DemoBuild.for_version("1.2.1")


def names(problems: list[ConfigProblem]) -> list[str]:
    return [p.check for p in problems]


def test_model_info_from_the_files_knows_only_what_they_say(tmp_path):
    llm, vision = models.write_model(tmp_path, "qwen2-vl-2b-instruct_w8a8_rk3588")
    info = bundle.read_model(llm, vision).info
    assert info == ModelInfo(name="qwen2-vl-2b-instruct_w8a8_rk3588", embed_size=1536, image_tokens=196,
                             vision_platforms=("rk3588",)), "the platform of an .rkllm is the runtime's to tell"


def test_model_info_takes_the_runtime_facts_from_its_init_lines():
    @attr.s
    class Run:
        transcript = attr.ib()

    host = ModelInfo(name="m", embed_size=1536, image_tokens=196, vision_platforms=("rk3576",))
    loaded = ModelProbe(run=Run("I rkllm: rkllm-runtime version: 1.2.1, rknpu driver version: 0.9.8, platform: RK3576\n"
                                "I rkllm: rkllm-toolkit version: 1.2.1b1, max_context_limit: 2048, npu_core_num: 2, "
                                "target_platform: RK3576, model_dtype: W4A16\nrkllm init success\n"))
    info = loaded.model_info(host)
    assert (info.target_platform, info.npu_core_num, info.max_context_limit, info.refused) == ("RK3576", 2, 2048, None)
    assert info.embed_size == 1536 and loaded.board(RK3576).rkllm_runtime == "1.2.1"
    refused = ModelProbe(run=Run("The model target_platform does not match!\nRKLLM init failed!\n"),
                         error="llm: rkllm init failed")
    info = refused.model_info(host)
    assert info.target_platform is None and "target_platform does not match" in info.refused
    assert names(checks.check_run(RK3576, info, GOOD_RUN, DEMO_121)) == ["target_platform"]


def test_a_good_configuration_has_no_problem():
    assert checks.check_run(RK3576, GOOD_MODEL, GOOD_RUN, DEMO_121) == []
    assert checks.CHECKS == ("runtime_version", "model_init", "target_platform", "vision_platform", "npu_core_num",
                             "rknn_core_num", "max_context_limit", "context_budget", "embed_size")


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
    ({"embed_size": 2048}, {}, DemoBuild(version="1.2.1", embed_size=1536), "embed_size", ["1.2.1 demo"]),
    ({"vision_platforms": ("rk3588",)}, {}, None, "vision_platform", ["RK3588", "RK3576", "target_platform='rk3576'"]),
    ({"refused": "E rkllm: invalid rkllm model!"}, {}, None, "model_init", ["invalid rkllm model", "whole"]),
    ({}, {}, attr.evolve(DEMO_121, rkllm_runtime="1.2.1", source="lib/librkllmrt.so"), None, []),
])
def test_each_check(model, run, demo, check, words):
    problems = checks.check_run(RK3576, attr.evolve(GOOD_MODEL, **model), attr.evolve(GOOD_RUN, **run),
                                demo or DEMO_121)
    assert names(problems) == ([check] if check else [])
    for word in words:
        assert word in problems[0].message


def test_the_embed_size_assumption_is_named_only_when_assumed():
    model = attr.evolve(GOOD_MODEL, embed_size=2048)
    assumed = checks.check_run(RK3576, model, GOOD_RUN, DEMO_121)[0].message
    declared = checks.check_run(RK3576, model, GOOD_RUN, DemoBuild(version="1.2.1", embed_size=1536))[0].message
    assert "assumed" in assumed and "demo_embed_size in runtime.yaml" in assumed
    assert "assumed" not in declared


def test_a_board_that_loads_another_runtime_than_the_bundle_ships():
    board = attr.evolve(RK3576, rkllm_runtime="1.1.4")
    demo = attr.evolve(DEMO_121, rkllm_runtime="1.2.1", source="lib/librkllmrt.so")
    problem = checks.check_run(board, GOOD_MODEL, GOOD_RUN, demo)
    assert names(problem) == ["runtime_version"]
    assert "1.2.1 (lib/librkllmrt.so)" in problem[0].message and "says 1.1.4" in problem[0].message
    assert checks.check_run(attr.evolve(RK3576, rkllm_runtime="1.2.1"), GOOD_MODEL, GOOD_RUN, demo) == []


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
    "rk3588 model": ("1.2.1", standin.M3588, {}, ["target_platform", "vision_platform", "npu_core_num"],
                     "init failed"),
    "context above limit": ("1.2.1", standin.M2B, {"max_new": 2048, "max_ctx": 16384}, ["max_context_limit"],
                            "init failed"),
    "prompt does not fit": ("1.2.1", standin.M2B, {"max_ctx": 200}, ["context_budget"], "run error"),
    "core num 3": ("1.2.3", standin.M2B, {"core": 3}, ["rknn_core_num"], "core mask"),
    "3b encoder, 1.2.1 demo": ("1.2.1", standin.M3B, {}, ["embed_size"], "segfault"),
    "3b encoder, 1.2.3 demo": ("1.2.3", standin.M3B, {}, [], "ok"),
    "corrupt model": ("1.2.1", standin.CORRUPT, {}, ["model_init"], "init failed"),
}


@attr.s
class _Transcript:
    transcript = attr.ib()


@needs_busybox
@pytest.mark.parametrize("case", list(CASES))
def test_checks_agree_with_the_standins(kit, board, case):
    """What the suite knows (the files, then the runtime's init lines of the run) predicts what the demo does."""
    version, model, overrides, expected, outcome = CASES[case]
    args = standin.demo_args(kit, version, model, **overrides)
    r = standin.run(kit, board, version, "demo", args, stdin="0\nexit\n")
    log = rkllm_log.parse(r.out)
    init_failed = outcome == "init failed"
    probe = ModelProbe(run=_Transcript(r.out), error="demo: rkllm init failed" if init_failed else None)
    info = probe.model_info(bundle.read_model(kit.llm(model), kit.vision(model)).info)
    run = RunConfig(max_context_len=args[4], max_new_tokens=args[3], prompt_tokens=27, image_tokens=196,
                    rknn_core_num=args[5])
    assert names(checks.check_run(probe.board(RK3576), info, run, DemoBuild.for_version(version))) == expected

    if outcome == "ok":
        assert r.rc == 0 and log["errors"] == [] and len(log["runs"]) == 1
    elif init_failed:
        assert r.rc == 255 and log["errors"][-1] == "rkllm init failed"
    elif outcome == "run error":
        assert log["errors"][-1] == "\\run error" and log["runs"] == []
    elif outcome == "core mask":
        assert log["errors"][0].endswith("max core mask = 3")
    else:
        assert r.rc == 139


@needs_busybox
def test_a_bundle_whose_library_is_not_what_the_board_loads_is_named(kit, board, tmp_path):
    """The bundle says 1.2.1 (runtime.yaml, its lib/ lacks librkllmrt.so) but the demo finds the
    image's /usr/lib/librkllmrt.so 1.3.0: the runtime's own version line names the mismatch."""
    demo_dir = tmp_path / "demo_Linux_aarch64"
    shutil.copytree(kit.bundles["1.2.1"], demo_dir)
    (demo_dir / "lib" / "librkllmrt.so").unlink()
    (demo_dir / "runtime.yaml").write_text("rkllm_runtime: 1.2.1\n")
    (board.root / "usr/lib").mkdir(parents=True)
    (board.root / "usr/lib/librkllmrt.so").write_bytes(runtime_library("librkllmrt.so", "1.3.0"))
    runtime = bundle.load_runtime(demo_dir)
    assert (runtime.rkllm_runtime, runtime.sources["rkllm_runtime"]) == ("1.2.1", "runtime.yaml (rkllm_runtime)")
    r = standin.run(kit, board, "1.2.1", "demo", standin.demo_args(kit, "1.2.1"), stdin="exit\n",
                    lib=demo_dir / "lib")
    probe = ModelProbe(run=_Transcript(r.out))
    problems = checks.check_run(probe.board(RK3576), GOOD_MODEL, GOOD_RUN, demo_build(runtime))
    assert names(problems) == ["runtime_version"]
    assert "ships librkllmrt 1.2.1 (runtime.yaml (rkllm_runtime))" in problems[0].message
    assert "runtime says 1.3.0" in problems[0].message
