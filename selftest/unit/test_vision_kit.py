"""The vision model set as a vendor has it: real ``.rknn`` files (Rockchip-built samples and the
twin's containers), Rockchip's published figures, an optional ``vision-models.yaml``, the
limits drawn from them, the refusals before a run, the golden comparison, and how
``hil golden accept`` files a run's vision answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from hil.kit import golden
from hil.kit import vision as kitvision
from hil.kit.bundle import KitError
from hil.kit.golden import GoldenAnswers
from hil.rockchip import versions
from hil.suite import config as suiteconfig
from hil.suite import vision
from hil.twin import vision as twinvision
from hil.twin import visionsdk
from selftest.unit.test_golden import SuiteRun, hil

SAMPLES = Path(__file__).resolve().parent / "rknn_samples"


@pytest.fixture
def zoo(tmp_path) -> Path:
    folder = tmp_path / "models"
    twinvision.write(folder)
    return folder


def test_the_twin_set_reads_as_a_vendor_folder_with_rockchips_figures(zoo):
    models = {m.name: m for m in kitvision.load_models(zoo)}
    assert sorted(models) == sorted(twinvision.VISION_MODELS)
    assert (models["mobilenetv2-12_rk3576"].kind, models["mobilenetv2-12_rk3576"].published_fps) == \
        ("classification", 467.0)
    assert (models["resnet50-v2-7_rk3576"].kind, models["resnet50-v2-7_rk3576"].published_fps) == \
        ("classification", 99.0)
    assert (models["yolov5s_rk3576"].demo, models["yolov5s_rk3576"].published_fps) == ("rknn_yolov5_demo", 57.5)
    assert (models["yolov8n_rk3576"].demo, models["yolov8n_rk3576"].published_fps) == ("rknn_yolov8_demo", 90.2)
    assert all(m.platforms == ["RK3576"] for m in models.values())
    assert "rknn_model_zoo README v2.3.2" in models["yolov8n_rk3576"].published_source
    assert "90.2 FPS" in models["yolov8n_rk3576"].published_source


def test_rockchip_built_samples_load_with_their_platform_and_no_figure(tmp_path):
    for sample in ("tk2_dual_residual_custom_RK3576.rknn", "tk2_dual_residual_custom_RK3588.rknn"):
        shutil.copy(SAMPLES / sample, tmp_path / sample)
    models = {m.name: m for m in kitvision.load_models(tmp_path)}
    assert models["tk2_dual_residual_custom_RK3576"].platforms == ["RK3576"]
    assert models["tk2_dual_residual_custom_RK3588"].platforms == ["RK3588"]
    assert all(m.kind is None and m.published_fps is None for m in models.values())
    refused = vision.platform_problem(models["tk2_dual_residual_custom_RK3588"], "RK3576")
    assert "built for RK3588" in refused and "board is RK3576" in refused
    assert vision.platform_problem(models["tk2_dual_residual_custom_RK3576"], "rk3576") is None


@pytest.mark.parametrize("stem,name", [
    ("mobilenet_v2", "mobilenetv2-12"), ("mobilenetv2-12-i8", "mobilenetv2-12"), ("yolov5s_rk3576", "yolov5s"),
    ("yolov8n-rk3576-int8", "yolov8n"), ("YOLO11N_rk3576_fp16", "yolo11n"), ("resnet50", "resnet50-v2-7"),
    ("yolov5s_relu_rk3576", "yolov5s_relu"), ("my_detector", None), ("yolov5", None)])
def test_file_names_map_to_the_published_table_after_their_suffixes(stem, name):
    assert kitvision.published_name(stem) == name


def test_the_yaml_says_what_a_file_cannot(zoo):
    shutil.copy(zoo / "yolov5s_rk3576.rknn", zoo / "my_detector.rknn")
    (zoo / kitvision.YAML_NAME).write_text(yaml.safe_dump({"models": {
        "my_detector": {"kind": "detection", "published_fps": 52, "source": "our reference board",
                        "demo": "rknn_yolov5_demo"},
        "resnet50-v2-7_rk3576": {"kind": "none"}}}))
    models = {m.name: m for m in kitvision.load_models(zoo)}
    mine = models["my_detector"]
    assert (mine.kind, mine.published_fps, mine.published_source, mine.demo) == \
        ("detection", 52.0, "our reference board", "rknn_yolov5_demo")
    assert models["resnet50-v2-7_rk3576"].kind is None and models["resnet50-v2-7_rk3576"].published_fps == 99.0


@pytest.mark.parametrize("entry,problem", [
    ({"mobilenetv2-12_rk3576": {"fps": 3}}, "unknown key fps"),
    ({"mobilenetv2-12_rk3576": {"kind": "segmentation"}}, "kind must be classification, detection or none"),
    ({"mobilenetv2-12_rk3576": {"published_fps": -1}}, "published_fps must be a number"),
    ({"mobilenetv2-12_rk3576": {"published_fps": True}}, "published_fps must be a number"),
    ({"nothing_here": {"kind": "detection"}}, "there is no nothing_here.rknn"),
])
def test_a_wrong_yaml_is_named_with_its_key(zoo, entry, problem):
    (zoo / kitvision.YAML_NAME).write_text(yaml.safe_dump({"models": entry}))
    with pytest.raises(KitError, match=problem):
        kitvision.load_models(zoo)


def test_a_detector_without_a_known_demo_is_refused_naming_the_fix(zoo):
    shutil.copy(zoo / "yolov5s_rk3576.rknn", zoo / "plates.rknn")
    (zoo / kitvision.YAML_NAME).write_text(yaml.safe_dump({"models": {"plates": {"kind": "detection"}}}))
    with pytest.raises(KitError, match=r"plates.*demo: rknn_yolov5_demo"):
        kitvision.load_models(zoo)


@pytest.mark.parametrize("damage,cause", [
    (lambda data: data[:100], "cut short|truncated|ends"),
    (lambda data: b"\0" * 16 + data[16:], "not an RKNN|magic|RKNN"),
    (lambda data: b"", "empty"),
])
def test_a_damaged_model_is_refused_naming_the_file(zoo, damage, cause):
    path = zoo / "yolov8n_rk3576.rknn"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(KitError, match=cause) as e:
        kitvision.load_models(zoo)
    assert "yolov8n_rk3576.rknn" in str(e.value)


def test_the_kit_needs_rknn_benchmark_its_librknnrt_and_the_detectors_demos(tmp_path, zoo):
    bench, zoo_dir = visionsdk.write(tmp_path / "sdk")
    kit = kitvision.load_kit(bench, zoo, zoo_dir)
    assert kit.rknn_runtime == "2.3.2"
    files = kit.files()
    assert files["rknn_benchmark_Linux/rknn_benchmark"] == bench / "rknn_benchmark"
    assert "zoo/rknn_yolov5_demo/model/coco_80_labels_list.txt" in files
    assert files["models/yolov8n_rk3576.rknn"] == zoo / "yolov8n_rk3576.rknn"
    with pytest.raises(KitError, match="need the model zoo demos rknn_yolov5_demo, rknn_yolov8_demo"):
        kitvision.load_kit(bench, zoo, None)
    (bench / "lib" / "librknnrt.so").write_bytes(b"no version here")
    with pytest.raises(KitError, match="lib/librknnrt.so with a version"):
        kitvision.load_kit(bench, zoo, zoo_dir)
    with pytest.raises(KitError, match="no rknn_benchmark in it"):
        kitvision.load_kit(tmp_path, zoo, zoo_dir)


def test_default_limits_name_the_published_figure_and_the_file(zoo):
    model = kitvision.read_model(zoo / "yolov5s_rk3576.rknn")
    limits = suiteconfig.vision_defaults(model)
    fps, latency, weight = limits["rknn_fps"], limits["rknn_latency_ms"], limits["rknn_weight_mib"]
    assert fps.min == pytest.approx(0.9 * 57.5) and fps.published == 57.5
    assert "yolov5s 57.5 FPS" in fps.describe() and "rknn_model_zoo" in fps.describe()
    assert latency.max == pytest.approx(1000 / (0.9 * 57.5), rel=1e-3)
    assert weight.max == pytest.approx(1.25 * (zoo / "yolov5s_rk3576.rknn").stat().st_size / 2**20, rel=1e-3)
    assert fps.violation(0.85 * 57.5) and not fps.violation(0.95 * 57.5)
    unknown = kitvision.read_model(SAMPLES / "tk2_dual_residual_custom_RK3576.rknn")
    assert set(suiteconfig.vision_defaults(unknown)) == {"rknn_weight_mib"}


@pytest.mark.parametrize("runtime,driver,refused", [
    ("2.3.2", "0.9.8", False), ("2.3.2", "0.9.6", False), ("2.3.2", "0.9.3", True), ("2.0.0b0", "0.9.5", True),
    ("1.6.0", "0.9.3", False), ("1.6.0", "0.9.2", True), ("1.4.0", "0.7.2", False), ("2.3.2", None, True)])
def test_a_librknnrt_newer_than_the_driver_supports_is_named(runtime, driver, refused):
    problem = vision.driver_problem(runtime, driver)
    assert bool(problem) is refused
    if refused and driver:
        assert f"librknnrt {runtime}" in problem and f"driver {driver}" in problem
        assert versions.required_rknn_driver(runtime) in problem


def _classes(*pairs):
    return [{"class": c, "score": s} for c, s in pairs]


def test_a_changed_class_or_score_is_named_with_expected_and_actual():
    recorded = {"top5": [281, 285, 282, 287, 904], "top1_score": 0.742188}
    same = vision.Answer("cat.png", top5=_classes((281, 0.75), (285, .1), (282, .08), (287, .01), (904, .003)))
    assert vision.golden_problems(same, recorded) == []
    swapped = vision.Answer("cat.png", top5=_classes((285, 0.74), (281, .1), (282, .08), (287, .01), (904, .003)))
    (problem,) = vision.golden_problems(swapped, recorded)
    assert "top-1 class 285, expected 281" in problem
    reordered = vision.Answer("cat.png", top5=_classes((281, 0.74), (282, .1), (285, .08), (287, .01), (904, .003)))
    assert "top-5 classes [281, 282, 285, 287, 904]" in vision.golden_problems(reordered, recorded)[0]
    weaker = vision.Answer("cat.png", top5=_classes((281, 0.60), (285, .1), (282, .08), (287, .01), (904, .003)))
    assert "top-1 score 0.600000, recorded 0.742188" in vision.golden_problems(weaker, recorded)[0]


def test_boxes_are_compared_by_label_and_overlap():
    recorded = [{"label": "cat", "box": [41, 34, 351, 358], "score": 0.912}]
    moved = vision.Answer("cat.png", detections=[{"label": "cat", "box": [43, 35, 350, 357], "score": 0.9}])
    assert vision.golden_problems(moved, recorded) == []
    dog = vision.Answer("cat.png", detections=[{"label": "dog", "box": [41, 34, 351, 358], "score": 0.9}])
    (problem,) = vision.golden_problems(dog, recorded)
    assert problem.startswith("cat.png: ") and "cat" in problem and "dog" in problem
    gone = vision.Answer("cat.png", detections=[])
    assert vision.golden_problems(gone, recorded)


def test_an_answer_is_recorded_in_the_form_the_golden_file_keeps():
    answer = vision.Answer("cat.png", top5=_classes((281, 0.742188), (285, 0.117188)))
    key, value = answer.property()
    assert key == "classes.cat.png" and json.loads(value) == {"top5": [281, 285], "top1_score": 0.742188}
    boxes = vision.Answer("red-circle.png", detections=[{"label": "sports ball", "box": (96, 97, 296, 295),
                                                         "score": 0.684}])
    assert boxes.property() == ("detections.red-circle.png",
                                json.dumps([{"label": "sports ball", "box": [96, 97, 296, 295], "score": 0.684}]))


def _vision_test(run: SuiteRun, model: str, outcome="passed", answers=None, board="rk3576-01"):
    props = [("vision.model", model), ("vision.runtime", "2.3.2")]
    props += [vision.Answer(p, top5=_classes(*a)).property() for p, a in (answers or {}).items()]
    run.test(f"tests/test_vision.py::test_vision_answers[{model}]", outcome, props,
             message="" if outcome == "passed" else "AssertionError: no Top-5", board=board)


def test_accept_files_a_runs_vision_answers_under_the_librknnrt_version(tmp_path, capsys):
    results, directory = tmp_path / "results", tmp_path / "golden"
    run = SuiteRun(results)
    _vision_test(run, "mobilenetv2-12_rk3576", answers={"cat.png": [(281, 0.742188), (285, 0.117188)],
                                                         "house.png": [(660, 0.4), (425, 0.2)]})
    run.finish()
    assert hil("golden", "accept", run.run_id, "--results", str(results), "--golden-dir", str(directory)) == 0
    assert "mobilenetv2-12_rk3576 on librknnrt 2.3.2: classes of 2 pictures" in capsys.readouterr().out
    answers = GoldenAnswers.load("mobilenetv2-12_rk3576", "2.3.2", directory)
    assert answers.recorded and answers.classes("cat.png") == {"top5": [281, 285], "top1_score": 0.742188}
    assert answers.recorded_from["run"] == run.run_id
    assert GoldenAnswers.load("mobilenetv2-12_rk3576", "2.3.3", directory).classes("cat.png") is None


def test_accept_refuses_a_run_whose_vision_answer_test_failed(tmp_path, capsys):
    results, directory = tmp_path / "results", tmp_path / "golden"
    run = SuiteRun(results)
    _vision_test(run, "resnet50-v2-7_rk3576", outcome="failed")
    run.finish()
    assert hil("golden", "accept", run.run_id, "--results", str(results), "--golden-dir", str(directory)) == 2
    assert "test_vision_answers[resnet50-v2-7_rk3576] failed" in capsys.readouterr().err
    assert not list(directory.glob("*.yaml")) if directory.exists() else True


def test_vision_answers_of_reads_only_passed_tests_with_their_model():
    tests = [SimpleNamespace(test_id="tests/test_vision.py::test_vision_answers[m]", outcome="passed", board="b",
                             message="", properties={"vision.model": "m", "vision.runtime": "2.3.2",
                                                     "detections.cat.png": json.dumps([{"label": "cat"}])}),
             SimpleNamespace(test_id="tests/test_vision.py::test_vision_speed[m-mask1]", outcome="passed",
                             board="b", message="", properties={"vision.model": "m"})]
    (found,), failed = golden.vision_answers_of(tests)
    assert (found.model, found.runtime, found.detections) == ("m", "2.3.2", {"cat.png": [{"label": "cat"}]})
    assert failed == []
