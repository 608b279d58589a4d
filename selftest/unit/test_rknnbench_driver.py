"""RKNNBenchmarkDriver on the host, driving the twin's rknn_benchmark and detection-demo
stand-in under busybox (the guest's shell): the command lines it builds, what it reads back,
and a run that fails keeping all it printed."""

from __future__ import annotations

import shutil

import pytest
from labgrid import Target

from hil.kit import pictures
from hil.lab import RKNNBenchmarkDriver, RKNNToolError
from hil.twin import vision, visionsdk
from selftest.unit.localboard import BUSYBOX, LocalCommandDriver, use_busybox

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")


@pytest.fixture
def kit(tmp_path):
    bench, zoo = visionsdk.write(tmp_path / "sdk dir")  # a space in every path: the driver quotes
    use_busybox(bench)
    for demo in visionsdk.DETECTION_DEMOS:
        use_busybox(zoo / demo)
    models = tmp_path / "models"
    vision.write(models, [*vision.VISION_MODELS, vision.FOREIGN])
    picture = tmp_path / "a cat.png"
    shutil.copy(pictures.PICTURES_DIR / "cat.png", picture)
    return bench, zoo, models, picture


@pytest.fixture
def driver(tmp_path):
    root = tmp_path / "root"
    (root / "sys/kernel/debug/rknpu").mkdir(parents=True)
    (root / "sys/kernel/debug/rknpu/version").write_text("RKNPU driver: v0.9.8\n")
    (root / "run/twin/fault").mkdir(parents=True)
    target = Target("rknn-unit")
    shell = LocalCommandDriver(target, "shell", env={"TWIN_ROOT": root, "TWIN_TIMESCALE": "0.01", "TMPDIR": tmp_path})
    d = RKNNBenchmarkDriver(target, "rknn", loops=5)
    target.activate(d)
    yield d, shell, root
    target.cleanup()


def test_a_speed_run_reads_every_loop_and_runs_where_the_tool_may_write(kit, driver):
    bench, _, models, _ = kit
    d, shell, _ = driver
    run = d.benchmark(str(bench), str(models / "yolov8n_rk3576.rknn"), loops=7, core_mask=3)
    assert run.parsed["complete"] and len(run.parsed["loops_ms"]) == 7 and run.status == 0
    assert run.parsed["runtime_version"] == "2.3.2" and run.parsed["driver_version"] == "0.9.8"
    fps = 1000 / sorted(run.parsed["loops_ms"])[3]
    assert 0.9 * 90.2 * 1.3 < fps < 1.1 * 90.2 * 1.3
    command, timeout = shell.commands[-1]
    assert f"cd '{bench.parent}/out'" in command and "LD_LIBRARY_PATH='" in command
    assert command.endswith("'' 7 3 2>&1") and timeout == d.timeout + 7 * d.loop_timeout


def test_a_classifier_answers_about_a_picture_with_its_top5(kit, driver):
    bench, _, models, picture = kit
    d, _, _ = driver
    run = d.benchmark(str(bench), str(models / "mobilenetv2-12_rk3576.rknn"), str(picture), loops=1, core_mask=1)
    assert [e["class"] for e in run.parsed["top5"][0]] == [281, 285, 282, 287, 904]


def test_a_detector_answers_from_its_model_zoo_demo_in_its_own_folder(kit, driver):
    _, zoo, models, picture = kit
    d, shell, _ = driver
    run = d.detect(str(zoo / "rknn_yolov5_demo"), str(models / "yolov5s_rk3576.rknn"), str(picture))
    assert run.parsed["detections"] == [{"label": "cat", "box": [41, 34, 351, 358], "score": 0.912}]
    assert shell.commands[-1][0].startswith(f"cd '{zoo}/rknn_yolov5_demo' && LD_LIBRARY_PATH=./lib ./rknn_yolov5_demo ")


def test_a_refused_model_raises_with_the_runtimes_words_and_keeps_the_output(kit, driver):
    bench, _, models, _ = kit
    d, _, _ = driver
    with pytest.raises(RKNNToolError) as e:
        d.benchmark(str(bench), str(models / "yolov5s_rk3588.rknn"), loops=2)
    assert "rknn_init fail! ret=-1" in str(e.value) and "exit status 255" in str(e.value)
    assert "rknn_api/rknnrt version" not in e.value.run.output and "E RKNN" in e.value.run.output


def test_a_run_past_its_timeout_is_a_failure_that_says_so(kit, driver):
    bench, _, models, _ = kit
    d, shell, _ = driver
    d.timeout, d.loop_timeout = 0.5, 0.0
    shell.env["TWIN_TIMESCALE"] = "200"  # each loop takes seconds now
    with pytest.raises(RKNNToolError, match=r"no end within 0.5 s") as e:
        d.benchmark(str(bench), str(models / "resnet50-v2-7_rk3576.rknn"), loops=3)
    assert e.value.run.parsed["complete"] is False


def test_a_missing_tool_is_named(tmp_path, driver):
    d, _, _ = driver
    with pytest.raises(RKNNToolError, match="rknn_benchmark"):
        d.benchmark(str(tmp_path / "nowhere"), "m.rknn", loops=1)
