"""The HTML report, checked as a reader sees it: rendered by headless Chromium at phone width."""

from __future__ import annotations

import argparse
import json
import re
import time

import attr
import pytest

from hil.measure.limits import Limit
from hil.measure.figure import NOT_MEASURED, Measurement
from hil.measure.records import TestRecord
from hil.measure.report import build
from hil.measure.report.command import add_commands
from hil.measure.report.html import board_verdict
from hil.measure.runfolder import RESULTS_FILE, RunFolder
from selftest.browser import BrowserError, browser, render  # noqa: F401  (browser: the fixture)

SELECTORS = (".board-verdict", "table.figures", "table.tests", "#failures .failure", "pre.console", "#provenance",
             "header", "#plots", "td.comparison")
CONSOLE_A = ("[  812.331] rknpu 27700000.npu: job timeout, core 1 status 0x00000002\n"
             "[  812.332] rknpu 27700000.npu: soft reset NPU core 1\n"
             "I rkllm: decode stalled after 37 tokens")
LONGREPR_A = "tests/test_npu_activity.py:18: in test_npu_load\n    AssertionError: npu_load_peak_pct.Core1 failed"


@attr.s
class Comparison:
    """Stand-in for hil.measure.compare.Comparison: what Measurement.to_dict() reads of one."""

    verdict = attr.ib()
    change_pct = attr.ib()
    p_value = attr.ib()
    median = attr.ib()
    baseline_median = attr.ib()
    n = attr.ib(default=5)
    baseline_n = attr.ib(default=5)
    tolerance_pct = attr.ib(default=3.0)
    baseline_run = attr.ib(default="20250601-101500-a1b2")
    gating = attr.ib(default=True)

    def describe(self, name, unit):
        return f"{name} regressed {self.change_pct:+.1f} %"

    def to_dict(self):
        return attr.asdict(self)


class History:
    """Stand-in for hil.measure.history.HistoryDB: ``trend`` rows per board, oldest first."""

    def __init__(self, run_id):
        self.calls = []
        self.rows = {
            ("boot_to_shell_s", "rk3576-a"): [(f"r{i}", f"2025-06-0{i}T10:00:00+02:00", "rk3576-a", 22.5 + i / 10, 1)
                                               for i in range(1, 6)] + [(run_id, "2025-06-07T09:00:00+02:00",
                                                                         "rk3576-a", 23.1, 1)],
            ("boot_to_shell_s", "rk3576-b"): [(f"s{i}", f"2025-06-0{i}T11:00:00+02:00", "rk3576-b", 57.0 + i / 5, 1)
                                               for i in range(2, 6)],
            ("text_decode_tokens_per_s", "rk3576-a"): [(f"r{i}", f"2025-06-0{i}T10:00:00+02:00", "rk3576-a",
                                                        15.2 - i / 50, 5) for i in range(1, 6)],
        }

    def trend(self, name, board=None, model=None, runtime=None, limit=50):
        self.calls.append((name, board, model))
        return self.rows.get((name, board), [])[-limit:]


def _measure(name, samples, unit, lim=None, comparison=None):
    m = Measurement(name, samples, unit).within(lim)
    if comparison is not None:
        m.compared(comparison)
    return m.to_dict()


def _test(board, nodeid, outcome, measurements=(), **extra):
    return TestRecord(nodeid=f"{nodeid}[{board}]", test=nodeid, board=board, outcome=outcome, duration=12.5,
                      measurements=list(measurements), finished="2025-06-07T09:12:00+02:00", **extra)


def _series(seconds=20, cores=("Core0", "Core1"), zones=("soc-thermal", "npu-thermal"), stuck_core=None):
    t = [i * 0.5 for i in range(seconds * 2)]
    load = {c: [(3.0 if c == stuck_core else 55 + 30 * ((i // 4) % 2) + 5 * k) for i in range(len(t))]
            for k, c in enumerate(cores)}
    temp = {z: [41.0 + 0.3 * i + 2 * k for i in range(len(t))] for k, z in enumerate(zones)}
    return [{"name": "npu_load", "unit": "%", "t": t, "values": load},
            {"name": "temperature", "unit": "°C", "t": t, "values": temp}]


BOOT = Limit("boot_to_shell_s", unit="s", max=60, source="rk3576.yaml#1")
MEM = Limit("memory_total_mib", unit="MiB", min=1536, source="rk3576.yaml#1")
DECODE = Limit("text_decode_tokens_per_s", unit="tok/s", min=13.0, published=14.45, source="rk3576.yaml#2")
MM_DECODE = Limit("mm_decode_tokens_per_s", unit="tok/s", min=13.1, published=14.57, source="rk3576.yaml#2")
NPU_PEAK = Limit("npu_load_peak_pct", unit="%", min=50, source="rk3576.yaml#1")

PROVENANCE = {
    "rk3576-a": [{"place": "rk3576-a", "board_serial": "c3d9b8674f4b94f6", "image": "debian12-rk3576-v3",
                  "kernel": "6.1.99-rk3576 #1 SMP PREEMPT", "rknpu_driver": "0.9.8",
                  "frequencies": {"npu": "950000000", "ddr": "2112000000"}},
                 {"rkllm_runtime": "1.2.1", "model": "qwen2-vl-2b-instruct_w4a16_rk3576",
                  "model_sha256": "9f2c4e1ab55d0e6b7a31c4d2e8f90a1b", "temperature_c": 41.2}],
    "rk3576-b": [{"place": "rk3576-b", "board_serial": "77aa01b2c3d4e5f6", "image": "debian12-rk3576-v3",
                  "kernel": "6.1.99-rk3576 #1 SMP PREEMPT", "rknpu_driver": "0.9.8", "rkllm_runtime": "1.2.1",
                  "model": "qwen2-vl-2b-instruct_w4a16_rk3576", "temperature_c": 39.7}],
}


def _write_run(tmp_path, *, finished=True):
    folder = RunFolder.create(tmp_path / "results", run_id="20250607-090000-beef",
                              argv=["pytest", "--lg-env", "env/lab.yaml", "tests", "--image", "debian12-rk3576-v3"],
                              options={"image": "debian12-rk3576-v3", "model": "qwen2-vl-2b-instruct_w4a16_rk3576",
                                       "repeat": 5, "baseline": "20250601-101500-a1b2", "limits": []},
                              history=None)
    for board, records in PROVENANCE.items():
        for data in records:
            folder.append({"type": "provenance", "board": board, "data": data})
    regression = Comparison("regression", -8.1, 0.004, 13.95, 15.18)
    improvement = Comparison("improvement", +2.1, 0.01, 14.4, 14.1)
    within = Comparison("within noise", -0.4, 0.62, 3891.2, 3891.2, gating=False)
    a, b = "rk3576-a", "rk3576-b"
    records = [
        _test(a, "tests/test_boot.py::test_boot_to_shell", "passed", [_measure("boot_to_shell_s", [23.1], "s", BOOT)]),
        _test(b, "tests/test_boot.py::test_boot_to_shell", "passed", [_measure("boot_to_shell_s", [58.2], "s", BOOT)]),
        _test(a, "tests/test_platform.py::test_memory", "passed",
              [_measure("memory_total_mib", [3891.2], "MiB", MEM, within)]),
        _test(b, "tests/test_platform.py::test_memory", "passed", [_measure("memory_total_mib", [3891.2], "MiB", MEM)]),
        _test(a, "tests/test_text_inference.py::test_text_decode", "failed",
              [_measure("text_decode_tokens_per_s", [13.9, 14.0, 13.8, 13.95, 14.1], "tok/s", DECODE, regression)],
              message="text_decode_tokens_per_s regressed -8.1 % from the baseline (p = 0.004)",
              longrepr="Failed: text_decode_tokens_per_s regressed -8.1 %"),
        _test(b, "tests/test_text_inference.py::test_text_decode", "passed",
              [_measure("text_decode_tokens_per_s", [14.3, 14.45, 14.4, 14.38, 14.5], "tok/s", DECODE, improvement)]),
        _test(a, "tests/test_npu_activity.py::test_npu_load", "failed",
              [_measure("npu_load_peak_pct", [3.0], "%", NPU_PEAK)],
              message="npu_load_peak_pct = 3 % is below its lower limit 50 %", console=CONSOLE_A,
              longrepr=LONGREPR_A, series=_series(stuck_core="Core1")),
        _test(b, "tests/test_npu_activity.py::test_npu_load", "passed",
              [_measure("npu_load_peak_pct", [91.0], "%", NPU_PEAK)], series=_series()),
        _test(a, "tests/test_multimodal.py::test_describe_picture", "passed",
              [_measure("mm_decode_tokens_per_s", [14.2, 14.3, 14.1], "tok/s", MM_DECODE)]),
        _test(b, "tests/test_multimodal.py::test_describe_picture", "skipped",
              message="the model has no vision encoder on this board"),
    ]
    for record in records:
        folder.append(record)
    folder.update_info(started="2025-06-07T09:00:00+02:00")
    if finished:
        folder.update_info(finished="2025-06-07T09:41:30+02:00", exitstatus=1)
    return folder


@pytest.fixture
def run_folder(tmp_path):
    return _write_run(tmp_path)


def _by_board(elements):
    return {e["attrs"]["data-board"]: e for e in elements}


def test_report_shows_verdicts_figures_plots_failures_and_provenance(run_folder, browser, record_property):
    history = History(run_folder.run_id)
    started = time.monotonic()
    path = build(run_folder.path, history=history)
    built = time.monotonic() - started
    assert path == run_folder.path / "report.html"
    page = browser(path, selectors=SELECTORS)
    record_property("report_build_s", round(built, 2))
    record_property("report_render_s", round(time.monotonic() - started - built, 2))

    header = page.elements["header"][0]["text"]
    for expected in ("20250607-090000-beef", "2025-06-07 09:00:00+02:00", "debian12-rk3576-v3",
                     "qwen2-vl-2b-instruct_w4a16_rk3576", "2025-06-07 09:41:30+02:00", "repeat", "20250601-101500-a1b2"):
        assert expected in header, f"{expected!r} not in the header:\n{header}"
    assert "interrupted" not in header

    verdicts = _by_board(page.elements[".board-verdict"])
    assert set(verdicts) == {"rk3576-a", "rk3576-b"}
    assert "FAIL" in verdicts["rk3576-a"]["text"] and "MARGINAL" not in verdicts["rk3576-a"]["text"]
    assert "MARGINAL" in verdicts["rk3576-b"]["text"]
    assert not {"FAIL", "PASS", "INCOMPLETE"} & set(verdicts["rk3576-b"]["text"].split())
    assert "3 passed · 2 failed · 0 skipped" in verdicts["rk3576-a"]["text"]
    assert "4 passed · 0 failed · 1 skipped" in verdicts["rk3576-b"]["text"]
    assert "regressed -8.1 %" in verdicts["rk3576-a"]["text"]

    figures = _by_board(page.elements["table.figures"])
    for board, expected in {
        "rk3576-a": ["boot_to_shell_s", "23.1 s", "memory_total_mib", "3891 MiB", "text_decode_tokens_per_s",
                     "13.95 tok/s", "15.18 tok/s", "-8.1 %", "regression", "npu_load_peak_pct", "3 %",
                     "mm_decode_tokens_per_s", "14.2 tok/s", "IQR", "n = 5", ">= 13 tok/s (published 14.45)"],
        "rk3576-b": ["58.2 s", "marginal", "14.4 tok/s", "+2.1 %", "improvement", "91 %"],
    }.items():
        text = figures[board]["text"]
        for item in expected:
            assert item in text, f"{item!r} not in the figures of {board}:\n{text}"
    colours = {e["text"].split()[0]: _rgb(e["color"]) for e in page.elements["td.comparison"]}
    red, green = colours["regression"], colours["improvement"]
    assert red[0] > 2 * max(red[1], red[2]), f"a regression should read red, is rgb{red}"
    assert green[1] > 2 * max(green[0], green[2]), f"an improvement should read green, is rgb{green}"

    expected_plots = {"decode:text_decode_tokens_per_s", "decode:mm_decode_tokens_per_s", "series:npu_load",
                      "series:temperature", "history:boot_to_shell_s", "history:text_decode_tokens_per_s"}
    assert {p.name for p in page.plots} == expected_plots
    for plot in page.plots:
        assert 300 <= plot.width <= 390 and plot.height > 150, f"{plot.name} is drawn at {plot.width}x{plot.height}"
        assert plot.colours() > 16, f"{plot.name}: the screenshot is (nearly) one colour"
    assert ("text_decode_tokens_per_s", "rk3576-a", "qwen2-vl-2b-instruct_w4a16_rk3576") in history.calls
    assert ("boot_to_shell_s", "rk3576-b", None) in history.calls
    assert "No history for text_decode_tokens_per_s" not in page.text

    failures = page.elements["#failures .failure"]
    assert [(f["attrs"]["data-board"], f["attrs"]["data-test"]) for f in failures] == [
        ("rk3576-a", "tests/test_text_inference.py::test_text_decode"),
        ("rk3576-a", "tests/test_npu_activity.py::test_npu_load")]
    consoles = [e["text"] for e in page.elements["pre.console"]]
    assert any(CONSOLE_A in c for c in consoles), consoles
    assert any("Failed: text_decode_tokens_per_s regressed" in c for c in consoles)  # no console: longrepr instead
    assert "npu_load_peak_pct = 3 % is below its lower limit 50 %" in failures[1]["text"]

    provenance = page.elements["#provenance"][0]["text"]
    for board, records in PROVENANCE.items():
        for data in records:
            for key, value in data.items():
                values = value.values() if isinstance(value, dict) else [value]
                for v in values:
                    assert str(v) in provenance, f"provenance {board} {key}={v} is not visible"
    assert "frequencies.npu" in provenance and "model_sha256" in provenance

    assert page.scroll_width <= page.viewport_width, f"the page scrolls sideways at 390 px ({page.scroll_width} px)"
    assert page.pdf_size > 20_000 and page.pdf_pages >= 2, (page.pdf_size, page.pdf_pages)


def test_interrupted_run_is_incomplete_and_shows_only_finished_tests(tmp_path, browser):
    folder = RunFolder.create(tmp_path, run_id="20250607-120000-dead", options={"image": "debian12-rk3576-v3"})
    folder.append({"type": "provenance", "board": "rk3576-a", "data": PROVENANCE["rk3576-a"][0]})
    folder.append(_test("rk3576-a", "tests/test_boot.py::test_boot_to_shell", "passed",
                        [_measure("boot_to_shell_s", [23.1], "s", BOOT)]))
    half = json.dumps(_test("rk3576-a", "tests/test_text_inference.py::test_text_decode", "passed",
                            [_measure("text_decode_tokens_per_s", [14.0], "tok/s", DECODE)]).to_dict())
    with open(folder.path / RESULTS_FILE, "a", encoding="utf-8") as f:
        f.write(half[: len(half) // 2])  # the process died writing this line

    page = browser(build(folder.path), selectors=(".board-verdict", "header", "table.tests", "#plots"))

    (verdict,) = page.elements[".board-verdict"]
    assert verdict["attrs"]["data-board"] == "rk3576-a" and "INCOMPLETE" in verdict["text"]
    assert "interrupted" in page.elements["header"][0]["text"]
    assert "1 test that finished" in page.elements["header"][0]["text"]
    tests = page.elements["table.tests"][0]["text"]
    assert "test_boot_to_shell" in tests and "passed" in tests
    assert "test_text_decode" not in page.text
    plots_text = page.elements["#plots"][0]["text"]
    assert "No history" in plots_text and "No decode speed" in plots_text and "No time series" in plots_text
    assert page.plots == []
    assert page.scroll_width <= page.viewport_width


def test_board_verdict_passes_a_clean_board_and_never_passes_an_empty_one():
    clean = [_test("b", "t1", "passed", [_measure("boot_to_shell_s", [23.1], "s", BOOT)]),
             _test("b", "t2", "skipped")]
    assert board_verdict(clean, interrupted=False) == ("PASS", [])
    assert board_verdict([], interrupted=False)[0] == "INCOMPLETE"
    assert board_verdict(clean, interrupted=True)[0] == "INCOMPLETE"
    regressed = _measure("text_decode_tokens_per_s", [14.0], "tok/s", DECODE,
                         Comparison("regression", -5.0, 0.01, 14.0, 14.7, gating=False))
    assert board_verdict([_test("b", "t", "passed", [regressed])], interrupted=False)[0] == "PASS"


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="hil")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    return args.func(args)


def test_report_command_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    assert _cli(str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "run.json" in err and str(tmp_path) in err
    assert not (tmp_path / "report.html").exists()


def test_report_command_rebuilds_the_report_and_prints_its_path(run_folder, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "qualification.html"
    assert _cli(str(run_folder.path), "--out", str(out)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    assert 'data-verdict="FAIL"' in text and 'data-verdict="MARGINAL"' in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/", "")
    assert _cli(str(run_folder.path), "--history", str(tmp_path / "missing.sqlite")) == 2
    assert "no history database" in capsys.readouterr().err


def test_report_command_charts_the_history_database_the_run_was_imported_into(run_folder, tmp_path, capsys):
    from hil.measure.history import HistoryDB

    db_path = tmp_path / "history.sqlite"
    with HistoryDB(db_path) as db:
        db.import_run(run_folder.path)
    assert _cli(str(run_folder.path), "--history", str(db_path)) == 0
    text = (run_folder.path / "report.html").read_text(encoding="utf-8")
    assert 'data-plot="history:boot_to_shell_s"' in text and 'data-plot="history:text_decode_tokens_per_s"' in text
    assert "No history" not in text


def test_text_from_the_run_cannot_inject_markup(tmp_path):
    folder = RunFolder.create(tmp_path, run_id="20250607-130000-0bad", options={"image": "<img src=x>"})
    evil = "</pre><script>alert(1)</script>"
    folder.append({"type": "provenance", "board": "b<1>", "data": {"kernel": evil}})
    series = [{"name": "npu_load", "unit": "%", "t": [0, 1, 2], "values": {"--><script>x</script>": [1, 50, 2]}}]
    folder.append(_test("b<1>", "tests/t.py::test_x", "failed", [_measure("decode_tokens_per_s", [1.0, 2.0], "tok/s")],
                        message=evil, console=evil + "\x1b[31mred\x1b[0m", series=series))
    text = build(folder.path).read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;red" in text  # terminal colours stripped too
    assert 'data-board="b&lt;1&gt;"' in text


def test_browser_helper_names_a_missing_page_and_kills_a_render_past_its_timeout(tmp_path, browser):
    with pytest.raises(BrowserError, match="no HTML file at"):
        render(tmp_path / "missing.html")
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><p>hello</p>")
    started = time.monotonic()
    with pytest.raises(BrowserError, match="took longer than 0.2 s"):
        render(page, timeout=0.2)
    assert time.monotonic() - started < 10


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(x)) for x in css[css.index("(") + 1: css.index(")")].split(",")[:3])


def test_a_lab_fault_board_gets_its_own_verdict_not_a_failure(tmp_path):
    from hil.measure.report import html as report_html

    folder = RunFolder.create(tmp_path, run_id="farm")
    folder.append({"type": "test", "nodeid": "tests/test_boot.py::test_boots_to_shell", "board": "twin-1",
                   "outcome": "passed", "measurements": []})
    folder.append({"type": "lab_fault", "board": "twin-2", "message": "no shell within 60 s"})
    folder.update_info(finished="2026-11-26T10:00:00+00:00", exitstatus=0)
    boards = {b.name: b for b in report_html.context(folder)["boards"]}
    assert boards["twin-1"].verdict == "PASS"
    assert boards["twin-2"].verdict == report_html.LAB_FAULT
    assert "no shell within 60 s" in boards["twin-2"].reasons[0]


def test_a_figure_its_test_never_reached_shows_as_not_measured(tmp_path):
    """A test that failed before measuring a declared figure: the figure is listed, with no sample."""
    folder = RunFolder.create(tmp_path, run_id="20250607-140000-0n0m")
    why = "not measured: RuntimeError: rkllm exited with status 139"
    unreached = Measurement("text_decode_tokens_per_s", [], "tok/s", verdict=NOT_MEASURED, violation=why)
    folder.append(_test("rk3576-a", "tests/test_text_inference.py::test_text_decode", "failed",
                        [_measure("text_prefill_ms", [812.0, 815.0], "ms"), unreached.to_dict()],
                        message="RuntimeError: rkllm exited with status 139"))
    folder.update_info(finished="2025-06-07T14:05:00+02:00", exitstatus=1)

    text = build(folder.path).read_text(encoding="utf-8")

    rows = dict(re.findall(r'<tr class="figure-row" data-figure="([^"]+)"[^>]*>(.*?)</tr>', text, re.S))
    assert set(rows) == {"text_prefill_ms", "text_decode_tokens_per_s"}
    row = rows["text_decode_tokens_per_s"]
    assert 'data-verdict="not measured"' in text
    assert re.search(r'<td class="verdict v-not-measured">not measured<small>' + re.escape(why), row), row
    assert '<td class="num median">–</td>' in row and "no sample" in row
    assert ".v-not-measured {" in text  # styled like the other verdicts
    assert '<td class="verdict v-unchecked">unchecked' in rows["text_prefill_ms"]
    assert "text_decode_tokens_per_s of tests/test_text_inference.py::test_text_decode on rk3576-a: " \
           "not measured." in text
    assert 'data-verdict="FAIL"' in text  # the failed test decides the board's verdict


def test_a_figure_shows_the_anomalies_left_out_of_it(tmp_path):
    """An NPU load sample above 100 % (rknpu2#102) left out of a figure: written in results.jsonl
    with the figure and shown in its row, under the spread."""
    folder = RunFolder.create(tmp_path, run_id="20250607-150000-a0a0")
    why = "session 1: Core1 read above 100 % in 1 of 3 samples (up to 429496 %): a driver miscount, left out"
    figure = Measurement("npu_load_peak_pct.text.Core1", [75.0, 64.0], "%", anomalies=[why]).within(NPU_PEAK)
    folder.append(_test("rk3576-a", "tests/test_npu_activity.py::test_npu_load_both_cores_text", "passed",
                        [figure.to_dict()]))
    folder.update_info(finished="2025-06-07T15:05:00+02:00", exitstatus=0)

    [line] = (folder.path / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["measurements"][0]["anomalies"] == [why]
    text = build(folder.path).read_text(encoding="utf-8")
    rows = dict(re.findall(r'<tr class="figure-row" data-figure="([^"]+)"[^>]*>(.*?)</tr>', text, re.S))
    assert '<small class="anomalies">anomalies left out: ' + why in rows["npu_load_peak_pct.text.Core1"]
    assert 'data-verdict="PASS"' in text, "an anomaly is no failure"
