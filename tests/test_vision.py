"""RKNN vision models: each model of the vision set runs on the board as fast as Rockchip
publishes, on one NPU core and on both, in the memory it should, and answers the test
pictures as recorded."""

import pytest

from hil.kit import pictures
from hil.rockchip import rknn_benchmark
from hil.suite import vision

PICTURES = [p["file"] for p in pictures.load()]


def _refused(runner, model):
    why = runner.refusal(model)
    if why:
        pytest.fail(f"{model.name} not run: {why}", pytrace=False)


def _run(runner, model, core_mask):
    _refused(runner, model)
    try:
        return runner.benchmark(model, core_mask)
    except vision.RKNNToolError as e:
        pytest.fail(str(e), pytrace=False)


def test_vision_config(vision_runner, vision_model, record_property):
    """Before any run: the model is built for this SoC and the bundle's librknnrt for this driver."""
    record_property("vision.runtime", vision_runner.layout.kit.rknn_runtime)
    record_property("vision.driver", vision_runner.driver_version or "")
    assert not vision_runner.refusal(vision_model), vision_runner.refusal(vision_model)


@pytest.mark.figures("rknn_fps", "rknn_latency_ms")
@pytest.mark.parametrize("core_mask", vision.CORE_MASKS, ids=[f"mask{m}" for m in vision.CORE_MASKS])
def test_vision_speed(vision_runner, vision_model, core_mask, measure, vision_limits, record_property):
    """FPS and latency of the timed loops of rknn_benchmark (after its 5 warm-ups), per core mask."""
    record_property("core_mask", f"{core_mask} ({rknn_benchmark.CORE_MASKS[core_mask]})")
    run = _run(vision_runner, vision_model, core_mask)
    measure("rknn_fps", vision.fps_of(run), "FPS").within(vision_limits)
    measure("rknn_latency_ms", run.parsed["loops_ms"], "ms").within(vision_limits)


@pytest.mark.figures("rknn_core_scaling")
def test_vision_core_scaling(vision_runner, vision_model, measure, vision_limits):
    """Both cores (mask 3) against one (mask 1): the FPS of each timed loop over one core's median."""
    single = vision.median(vision.fps_of(_run(vision_runner, vision_model, vision.SINGLE)))
    both = vision.fps_of(_run(vision_runner, vision_model, vision.BOTH))
    measure("rknn_core_scaling", [f / single for f in both], "x").within(vision_limits)


@pytest.mark.figures("rknn_weight_mib", "rknn_internal_mib", "rknn_dma_mib")
def test_vision_memory(vision_runner, vision_model, measure, vision_limits):
    """What librknnrt allocates for the model (RKNN_QUERY_MEM_SIZE, as rknn_benchmark prints it)."""
    parsed = _run(vision_runner, vision_model, vision.SINGLE).parsed
    mib = {key: parsed[key] / 2**20 for key in ("weight_size", "internal_size", "dma_size") if parsed[key] is not None}
    measure("rknn_weight_mib", mib.get("weight_size"), "MiB").within(vision_limits)
    measure("rknn_internal_mib", mib.get("internal_size"), "MiB").within(vision_limits)
    measure("rknn_dma_mib", mib.get("dma_size"), "MiB").within(vision_limits)


def test_vision_answers(vision_runner, vision_model, record_property):
    """Each test picture gets an answer: a classifier's Top-5, a detector's boxes (maybe none)."""
    if vision_model.kind is None:
        pytest.skip(f"{vision_model.name}: no kind of output to check (performance only; set kind in "
                    f"vision-models.yaml)")
    _refused(vision_runner, vision_model)
    try:
        answers = vision_runner.answers(vision_model, PICTURES)
    except vision.RKNNToolError as e:
        pytest.fail(str(e), pytrace=False)
    record_property("vision.model", vision_model.name)
    record_property("vision.runtime", vision_runner.layout.kit.rknn_runtime)
    for answer in answers:  # what `hil golden accept` records
        record_property(*answer.property())
    empty = [a.picture for a in answers if a.top5 is not None and not a.top5]
    assert not empty, f"{vision_model.name}: no Top-5 for {', '.join(empty)}"


def test_vision_golden(vision_runner, vision_model, vision_golden, no_golden):
    """The answers equal the recorded ones: the same Top-5 classes and a top-1 score within its
    tolerance; every recorded box found again with its label, overlapping enough."""
    if vision_model.kind is None:
        pytest.skip(f"{vision_model.name}: no kind of output to check (performance only)")
    kind = "classes" if vision_model.kind == "classification" else "detections"
    recorded = {p: getattr(vision_golden, kind)(p) for p in PICTURES}
    if all(r is None for r in recorded.values()):
        no_golden("the test pictures", vision_golden)
    _refused(vision_runner, vision_model)
    try:
        answers = vision_runner.answers(vision_model, PICTURES)
    except vision.RKNNToolError as e:
        pytest.fail(str(e), pytrace=False)
    problems = [p for a in answers if recorded.get(a.picture) is not None
                for p in vision.golden_problems(a, recorded[a.picture])]
    assert not problems, f"{vision_model.name} answers changed: " + "; ".join(problems)
