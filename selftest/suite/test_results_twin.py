"""Results of real twin runs: the report as a reader sees it, the baseline gate, a killed run.

Each test runs the qualification suite in a subprocess against a twin bench, then looks at
what it left: the run folder, the history database, and the HTML report rendered in
headless Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hil.measure.history import HistoryDB
from hil.paths import REPO
from hil.measure.runfolder import RunFolder
from selftest.browser import render
from selftest.suite.conftest import suite_command

KILL_AFTER_TESTS = 8
KILL_TIMEOUT = 400.0


@pytest.fixture(scope="module")
def bench(suite_bench):
    return suite_bench


@pytest.fixture(scope="module")
def reference(reference_run):
    """The passing run of the reference image (shared with test_suite_twin), which the baseline
    test accepts as its board's baseline."""
    assert reference_run.failed() == {}, f"the reference run failed:\n{reference_run.failed()}\n" \
                                         f"{reference_run.output[-3000:]}"
    return reference_run


def _hil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_report_of_a_passing_run(reference, history_db):
    view = render(reference.run_dir / "report.html", selectors=[".board-verdict"])
    verdicts = view.elements[".board-verdict"]
    assert [v["attrs"].get("data-board") for v in verdicts] == ["twin-1"]
    assert "PASS" in verdicts[0]["text"]
    for figure in ("boot_to_shell_s", "text_decode_tokens_per_s", "mm_decode_tokens_per_s", "encoder_ms"):
        assert figure in view.text, f"{figure} not visible in the report"
    decode = json.loads(reference.cases["test_text_inference.py::test_text_performance"]["properties"]
                        .get("text_decode_tokens_per_s.n", "0"))
    assert decode == 5, "the decode figure is not the median of 5 repetitions"
    for plot in ("decode:text_decode_tokens_per_s", "decode:mm_decode_tokens_per_s", "vision:yolov5s_rk3576",
                 "vision:mobilenetv2-12_rk3576", "series:npu_load.text",
                 "series:npu_load.multimodal", "series:temperature.text", "series:temperature.multimodal"):
        drawn = [p for p in view.plots if p.name == plot]
        assert drawn, f"no {plot} plot; plots: {[p.name for p in view.plots]}"
        assert all(p.width > 100 and p.height > 80 and p.colours() > 4 for p in drawn), f"{plot} plot is empty"
    assert view.scroll_width <= view.viewport_width, "the report scrolls sideways on a phone"
    assert view.pdf_pages >= 1
    provenance = RunFolder.open(reference.run_dir).provenance()["twin-1"]
    for key in ("kernel", "rknpu_driver", "rkllm_runtime", "model_sha256", "image"):
        assert str(provenance[key]) in view.text, f"provenance {key} not in the report"


def test_regression_against_the_accepted_baseline_fails_with_both_figures(bench, reference, run_suite, history_db):
    accepted = _hil("baseline", "accept", str(reference.run_dir), "--db", str(history_db))
    assert accepted.returncode == 0, accepted.stderr
    bench.call("PUT", "/fault/1/decode-slow", b"7")
    bench.call("PUT", "/fault/1/rknn-slow", b"yolov5s_rk3576:5")
    try:
        run = run_suite(bench, "--baseline", "auto", "-k",
                        "test_text_performance or test_boots_to_shell or test_vision_speed and yolov5s")
    finally:
        bench.call("DELETE", "/fault/1/decode-slow")
        bench.call("DELETE", "/fault/1/rknn-slow")
    # a vision model 5 % slower: within its limit, flagged by the baseline
    for mask in (1, 2, 3):
        vision_case = f"test_vision.py::test_vision_speed[yolov5s_rk3576-mask{mask}]"
        assert run.outcome(vision_case) == "failed", run.output[-3000:]
        assert "rknn_fps regressed" in run.message(vision_case), run.message(vision_case)
        assert "below its lower limit" not in run.message(vision_case)
    case = "test_text_inference.py::test_text_performance"
    assert run.outcome(case) == "failed", run.output[-3000:]
    message = run.message(case)
    base = float(reference.cases[case]["properties"]["text_decode_tokens_per_s"])
    now = float(run.cases[case]["properties"]["text_decode_tokens_per_s"])
    assert "text_decode_tokens_per_s regressed" in message and reference.run_dir.name in message
    assert f"{base:.2f}" in message and f"{now:.2f}" in message, message
    assert "below its lower limit" not in message, "the slowdown should be caught by the baseline, not the limit"
    assert run.outcome("test_boot.py::test_boots_to_shell") == "passed"

    view = render(run.run_dir / "report.html", selectors=[".board-verdict", "#failures .failure"])
    assert "FAIL" in view.elements[".board-verdict"][0]["text"]
    failure = view.elements["#failures .failure"][0]["text"]
    assert "test_text_performance" in failure and "regressed" in failure
    assert "root@myd-lr3576" in failure or "login" in failure, "the failed test's console log is not shown"
    assert "regression" in view.text
    history = [p for p in view.plots if p.name.startswith("history:")]
    assert history and all(p.colours() > 4 for p in history), "no history plot"


def test_killed_run_keeps_every_finished_test(bench, tmp_path, history_db):
    """SIGKILL the suite mid-run: the run folder still makes a report of what had finished."""
    env_file = bench.env_file(tmp_path)
    cmd = suite_command(env_file, tmp_path, history_db, "--repeat", "2")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}, start_new_session=True)
    results = tmp_path / "results" / "latest" / "results.jsonl"
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while True:
            finished = [json.loads(line) for line in (results.read_text().splitlines() if results.exists() else [])
                        if '"type": "test"' in line]
            if len(finished) >= KILL_AFTER_TESTS:
                break
            assert proc.poll() is None, f"the suite ended (exit {proc.returncode}) before it could be killed"
            assert time.monotonic() < deadline, f"only {len(finished)} tests finished in {KILL_TIMEOUT:g} s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run_dir = results.parent.resolve()
    on_disk = RunFolder.open(run_dir).tests()
    assert len(on_disk) >= len(finished) and RunFolder.open(run_dir).info()["finished"] is None

    rebuilt = _hil("report", str(run_dir), "--history", str(history_db))
    assert rebuilt.returncode == 0, rebuilt.stderr
    view = render(run_dir / "report.html", selectors=[".board-verdict"])
    assert "INCOMPLETE" in view.elements[".board-verdict"][0]["text"]
    for record in on_disk:
        name = record.nodeid.split("::")[-1]
        assert name in view.text, f"finished test {name} is missing from the report of the killed run"
    with HistoryDB(history_db) as db:
        assert {t["nodeid"] for t in db.tests(run_dir.name)} >= {r["nodeid"] for r in finished}
