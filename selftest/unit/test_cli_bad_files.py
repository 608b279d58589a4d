"""The ``hil`` command on files that are damaged, binary, huge, of the wrong kind or copied:
a one-line error (or warning) that names the file, never a traceback, and nothing written
where nothing should be. Every file is real, made in tmp_path; the CLI is ``hil.cli.main``."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from hil import cli
from hil.measure.history import HistoryDB, HistoryError, load_baseline
from hil.measure.records import TestRecord
from hil.measure.runfolder import RESULTS_FILE, RUN_FILE, RunFolder, RunFolderError
from hil.rockchip import rkllm_log
from hil.rockchip.text import clean_lines
from hil.suite.recorder import Baseline as SuiteBaseline
from selftest.unit import test_rockchip_rkllm_log as captures

BOARD = "rk3576-a"
TEST = "tests/test_text_inference.py::test_decode"


def hil(*argv) -> int:
    return cli.main([str(a) for a in argv])


def figure(name="text_decode_tokens_per_s", samples=(14.5, 14.6, 14.55), unit="tok/s"):
    samples = list(samples) if isinstance(samples, (list, tuple)) else samples
    return {"name": name, "unit": unit, "samples": samples, "n": len(samples), "median": 14.55,
            "iqr": 0.05, "better": "higher", "verdict": "pass", "limit": None, "comparison": None}


def make_run(results: Path, run_id="20261126-100000-aaaa", *, samples=(14.5, 14.6, 14.55), **info) -> RunFolder:
    """A finished run of one board: provenance (with text that is not ASCII) and one measured test."""
    folder = RunFolder.create(results, run_id=run_id, options={"repeat": 3}, **info)
    folder.append({"type": "provenance", "board": BOARD, "data": {
        "image": "rk3576-debian12-v1.0.img", "rkllm_runtime": "1.2.1", "model": "qwen2-vl-2b",
        "note": "温度 41 °C"}})
    folder.append(TestRecord(board=BOARD, test=TEST, nodeid=f"{TEST}[{BOARD}]", outcome="passed", duration=2.0,
                             message="回答：你好", finished="2026-11-26T10:05:00",
                             measurements=[figure(samples=samples)]))
    folder.update_info(finished="2026-11-26T10:10:00", exitstatus=0)
    return folder


def one_line_error(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    return err


# --- 1. hil report on a results.jsonl cut inside a multibyte character ---------------------------------

def cut_line(text: str) -> bytes:
    """A results.jsonl line as the suite writes it, cut inside the first character that is not ASCII."""
    line = json.dumps({"type": "test", "board": BOARD, "test": "tests/t.py::test_cut", "nodeid": "tests/t.py::test_cut",
                       "outcome": "passed", "message": text}, ensure_ascii=False).encode()
    first = next(i for i, b in enumerate(line) if b >= 0x80)
    return line[: first + 1]  # one byte of a three-byte character


def test_report_skips_a_last_line_cut_inside_a_multibyte_character(tmp_path, capsys):
    folder = make_run(tmp_path / "results")
    with open(folder.path / RESULTS_FILE, "ab") as f:
        f.write(cut_line("段错误"))
    assert [t.test for t in folder.tests()] == [TEST]
    assert hil("report", folder.path) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(folder.path / "report.html")
    page = (folder.path / "report.html").read_text(encoding="utf-8")
    assert "test_decode" in page and "test_cut" not in page


def test_a_decoding_error_before_the_last_line_is_named_with_file_and_offset(tmp_path, capsys):
    folder = make_run(tmp_path / "results")
    results = folder.path / RESULTS_FILE
    data = results.read_bytes()
    bad = data.index("温度".encode())  # inside the first line, a later line follows
    results.write_bytes(data[:bad] + b"\xff" + data[bad + 1:])
    assert hil("report", folder.path) == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(results) in err and f"byte {bad} (0xff)" in err
    assert not (folder.path / "report.html").exists()
    with pytest.raises(RunFolderError, match=f"byte {bad} "):
        folder.tests()


def test_a_complete_last_line_with_bytes_that_are_not_utf8_is_no_cut_line(tmp_path):
    folder = make_run(tmp_path / "results")
    results = folder.path / RESULTS_FILE
    size = results.stat().st_size
    with open(results, "ab") as f:
        f.write(cut_line("段错误") + b"\n")  # the newline was written: this is no line cut by a kill
    with pytest.raises(RunFolderError, match=f"byte {size + len(cut_line('段')) - 1} "):
        folder.records()


# --- 2. binary or non-UTF-8 baselines -----------------------------------------------------------

BINARY = bytes(range(256)) * 4  # valid UTF-8 up to byte 127; byte 128 (0x80) is not


def test_baseline_accept_of_a_binary_file_names_it_and_the_offset(tmp_path, capsys):
    path = tmp_path / "baseline.bin"
    path.write_bytes(BINARY)
    db = tmp_path / "history.sqlite"
    assert hil("baseline", "accept", path, "--db", db) == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(path) in err and "byte 128" in err and "binary" in err
    assert not db.exists()  # checked before the history is opened


@pytest.mark.parametrize("give", ["folder", "results.jsonl"])
def test_baseline_accept_of_a_run_whose_results_are_not_utf8(tmp_path, capsys, give):
    folder = make_run(tmp_path / "results")
    results = folder.path / RESULTS_FILE
    good = results.read_bytes()
    results.write_bytes(good + BINARY + b"\n" + good)
    db = tmp_path / "history.sqlite"
    assert hil("baseline", "accept", folder.path if give == "folder" else results, "--db", db) == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(results) in err and f"byte {len(good) + 128} (0x80)" in err
    assert not db.exists()


def test_baseline_accept_of_a_run_json_that_is_not_utf8(tmp_path, capsys):
    folder = make_run(tmp_path / "results")
    (folder.path / RUN_FILE).write_bytes(b'{"run_id": "\xc3("}')
    assert hil("baseline", "accept", folder.path / RUN_FILE, "--db", tmp_path / "history.sqlite") == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(folder.path / RUN_FILE) in err and "byte 12 (0xc3)" in err


def _suite_baseline(spec) -> SuiteBaseline:
    """What ``--baseline SPEC`` loads, as the suite loads it (no history in use)."""
    config = types.SimpleNamespace(history_path=None, board_id=BOARD, model=types.SimpleNamespace(name="qwen2-vl-2b"),
                                   runtime=types.SimpleNamespace(rkllm_runtime="1.2.1"))
    return SuiteBaseline(str(spec), config)


def test_a_binary_baseline_option_is_a_clear_error(tmp_path):
    path = tmp_path / "baseline.bin"
    path.write_bytes(BINARY)
    baseline = _suite_baseline(path)
    assert baseline.load() is None
    assert str(path) in baseline.error and "byte 128" in baseline.error and "\n" not in baseline.error

    folder = make_run(tmp_path / "results")
    results = folder.path / RESULTS_FILE
    good = results.read_bytes()
    results.write_bytes(good.replace("温度".encode(), b"\xe6\xb8\x00\x00", 1))
    for spec in (folder.path, results):
        baseline = _suite_baseline(spec)
        assert baseline.load() is None
        offset = good.index("温度".encode())
        assert str(results) in baseline.error and f"byte {offset} (0xe6)" in baseline.error
    with pytest.raises(HistoryError, match=f"byte {offset} "):
        load_baseline(str(results), history=None, board=BOARD)


# --- 3. hil parse rkllm-log: bounded memory, and a warning for what is no RKLLM log ---------------

PARSE_PEAK = textwrap.dedent("""\
    import contextlib, io, json, resource, sys
    from hil import cli
    cli.parser()  # everything the command imports, imported before the measurement starts
    import hil.rockchip.rkllm_log
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["parse", "rkllm-log", sys.argv[1]])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rc": rc, "grew_kib": after - before, "out": json.loads(out.getvalue())}))
""")


def test_parse_rkllm_log_of_a_32_mb_file_runs_in_bounded_memory(tmp_path):
    """A long serial capture: the 1.2.3 header, 32 MiB of streamed answers, the perf table."""
    path = tmp_path / "capture.log"
    answer = ("robot: " + "这是一个很长的回答，" * 8 + "The quick brown fox jumps over the lazy dog. " * 3
              + "\x1b[0m\r\n").encode()
    with open(path, "wb") as f:
        f.write(captures.V12X.replace("\n", "\r\n").encode())
        f.write(answer * ((32 << 20) // len(answer)))
        f.write(captures.TABLE_121.replace("\n", "\r\n").encode())
    size = path.stat().st_size
    r = subprocess.run([sys.executable, "-c", PARSE_PEAK, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["rc"] == 0
    assert result["out"]["runtime_version"] == "1.2.3" and result["out"]["npu_core_num"] == 2
    assert result["out"]["runs"] == [{"prefill_ms": 4143.53, "prefill_tokens": 223, "prefill_tokens_per_s": 53.82,
                                      "generate_ms": 20911.6, "generate_tokens": 116, "generate_tokens_per_s": 5.55,
                                      "peak_memory_mib": 4659.2}]
    # reading the file whole takes several times its size (bytes, text, cleaned text, lines)
    assert result["grew_kib"] * 1024 < size / 4, f"peak RSS grew by {result['grew_kib']} KiB for {size} bytes"


@pytest.mark.parametrize("name", [n for n in dir(captures) if n.isupper() and isinstance(getattr(captures, n), str)
                                  and n not in ("SEP",)])
def test_streamed_lines_parse_as_the_whole_capture(name):
    text = getattr(captures, name)
    for form in (text, text.replace("\n", "\r\n"), text.replace("\n", "\r\r\n")):
        data = form.encode()
        for chunk in (1, 3, 64, 1 << 20):
            assert rkllm_log.parse_lines(rkllm_log.iter_lines(io.BytesIO(data), chunk)) == rkllm_log.parse(form)


def test_streamed_lines_are_the_lines_of_the_whole_text():
    rng = random.Random(3576)
    pieces = [b"\r", b"\n", b"\r\n", b"\r\r\n", b"\x1b]0;title\x07", b"\x1b]0;ti\ntle\x07", b"\x1b]0;a\nb\x1b\\",
              b"\x1b]", b"\x07", b"\x1b[31m", b"\x1b", b"I rkllm: x", "段错误".encode(), "😀".encode(), b"\xff",
              b"\xe6\x96", b"\x00", b" "]
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 50)))
        chunk = rng.randint(1, 9)
        assert list(rkllm_log.iter_lines(io.BytesIO(data), chunk)) == \
            clean_lines(data.decode("utf-8", errors="replace")), (data, chunk)


def test_parse_rkllm_log_warns_about_a_file_that_is_no_rkllm_log(tmp_path, capsys):
    path = tmp_path / "syslog"
    path.write_text("Nov 26 10:00:00 host systemd[1]: Started Session 1.\nSegmentation fault\n")
    assert hil("parse", "rkllm-log", path) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["runtime_version"] is None and out["runs"] == []
    warning = captured.err
    assert warning.startswith(f"warning: {path} does not look like an RKLLM runtime log: ") and warning.count("\n") == 1
    assert "rkllm:" in warning and "rkllm-runtime version:" in warning and "performance table" in warning

    binary = tmp_path / "model.rkllm"
    binary.write_bytes(BINARY)
    assert hil("parse", "rkllm-log", binary) == 0
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: {binary} does not look like an RKLLM runtime log") and "not UTF-8" in warning

    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert hil("parse", "rkllm-log", empty) == 0
    assert "it is empty" in capsys.readouterr().err


@pytest.mark.parametrize("text", [captures.V12X + captures.TABLE_121, captures.V101_QUERY_ERROR,
                                  "I rkllm: Enabled cpus: [4, 5, 6, 7]\n", "rkllm init failed\n"])
def test_parse_rkllm_log_does_not_warn_about_an_rkllm_log(tmp_path, capsys, text):
    path = tmp_path / "run.log"
    path.write_text(text)
    assert hil("parse", "rkllm-log", path) == 0
    assert capsys.readouterr().err == ""


# --- 4. baseline accept of figures whose samples are not numbers ------------------------------------

@pytest.mark.parametrize("samples,shown", [
    (["14.5", "14.6", "14.55"], "'14.5'"), ([14.5, None, 14.55], "None"), ([14.5, float("nan")], "nan"),
    ([14.5, float("inf")], "inf"), ([True, 14.6], "True"), ("14.5", "'14.5'"), ([[14.5]], "[14.5]"),
])
def test_baseline_accept_refuses_samples_that_are_not_finite_numbers(tmp_path, capsys, samples, shown):
    folder = make_run(tmp_path / "results", samples=samples)
    db = tmp_path / "history.sqlite"
    assert hil("baseline", "accept", folder.path, "--db", db) == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(folder.path / RESULTS_FILE) in err and f"test {TEST}[{BOARD}]" in err
    assert "figure text_decode_tokens_per_s" in err and shown in err and "not a" in err
    assert not db.exists()
    with pytest.raises(HistoryError, match="figure text_decode_tokens_per_s"):
        load_baseline(str(folder.path), history=None, board=BOARD)


def test_baseline_accept_refuses_a_run_recorded_with_string_samples(tmp_path, capsys):
    """A run already in the history (recorded by an older version) is checked too."""
    db_path = tmp_path / "history.sqlite"
    with HistoryDB(db_path) as db:
        db.record_provenance("old-run", BOARD, {"model": "qwen2-vl-2b"})
        db.record_test("old-run", TestRecord(board=BOARD, test=TEST, nodeid=TEST,
                                             measurements=[figure(samples=["fast", "faster"])]))
    assert hil("baseline", "accept", "old-run", "--db", db_path) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "run old-run" in err and f"test {TEST}" in err and "figure text_decode_tokens_per_s" in err
    with HistoryDB(db_path) as db:
        assert db.baselines() == []


def test_baseline_accept_of_a_good_run_still_works(tmp_path, capsys):
    folder = make_run(tmp_path / "results")
    db = tmp_path / "history.sqlite"
    assert hil("baseline", "accept", folder.path / RESULTS_FILE, "--db", db) == 0
    assert f"board {BOARD}, model qwen2-vl-2b, runtime 1.2.1: run {folder.run_id}" in capsys.readouterr().out


# --- 7. hil report on a copied run folder ------------------------------------------------------------

@pytest.fixture
def made_in_lab(tmp_path, monkeypatch):
    """A run made in ``lab/`` with ``--results-dir results``: run.json names ``results/history.sqlite``
    relative to ``lab/``. Returns (the run folder, the history file)."""
    lab = tmp_path / "lab"
    lab.mkdir()
    monkeypatch.chdir(lab)
    history = Path("results") / "history.sqlite"
    folder = make_run(Path("results"), history=str(history))
    with HistoryDB(history) as db:
        db.import_run(folder)
    monkeypatch.delenv("HIL_HISTORY", raising=False)
    return lab / folder.path, lab / history


def _state(path: Path) -> tuple:
    st = path.stat()
    return st.st_mtime_ns, st.st_size, path.read_bytes()


def _databases(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.suffix == ".sqlite" or p.name.endswith(("-wal", "-shm", "-journal"))}


@pytest.mark.parametrize("cwd", ["lab", "copy"])
def test_report_of_a_copied_folder_leaves_the_original_history_alone(tmp_path, monkeypatch, capsys, made_in_lab, cwd):
    folder, history = made_in_lab
    copy = tmp_path / "copy" / folder.name
    shutil.copytree(folder, copy)
    before, databases = _state(history), _databases(tmp_path)
    # from lab/ the relative path would name the original database; from the copy's folder, none
    monkeypatch.chdir(tmp_path / cwd)
    assert hil("report", copy) == 0
    assert _state(history) == before
    assert _databases(tmp_path) == databases  # no new database, and no journal beside the original
    captured = capsys.readouterr()
    assert captured.out.strip() == str(copy / "report.html")
    assert "relative to where the run was started" in captured.err and "--history" in captured.err
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert 'data-plot="history:text_decode_tokens_per_s"' not in page


def test_report_opens_a_history_it_is_given_read_only(tmp_path, capsys, made_in_lab):
    folder, history = made_in_lab
    copy = tmp_path / "copy" / folder.name
    shutil.copytree(folder, copy)
    before = _state(history)
    assert hil("report", copy, "--history", history) == 0
    assert _state(history) == before
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert 'data-plot="history:text_decode_tokens_per_s"' in page
    assert "No history for text_decode_tokens_per_s" not in page


def test_report_charts_the_history_run_json_names_by_an_absolute_path_read_only(tmp_path, capsys, made_in_lab):
    folder, history = made_in_lab
    folder.joinpath(RUN_FILE).write_text(json.dumps({**json.loads(folder.joinpath(RUN_FILE).read_text()),
                                                     "history": str(history)}))
    copy = tmp_path / "copy" / folder.name
    shutil.copytree(folder, copy)
    before = _state(history)
    os.chmod(history, 0o444)  # a writer would fail on it
    try:
        assert hil("report", copy) == 0, capsys.readouterr().err
    finally:
        os.chmod(history, 0o644)
    assert _state(history) == before
    assert 'data-plot="history:text_decode_tokens_per_s"' in (copy / "report.html").read_text(encoding="utf-8")


def test_report_names_a_file_that_is_no_history_database(tmp_path, capsys, made_in_lab):
    folder, _history = made_in_lab
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(BINARY)
    assert hil("report", folder, "--history", junk) == 2
    err = one_line_error(capsys.readouterr().err)
    assert str(junk) in err
    assert junk.read_bytes() == BINARY
