"""The results history (SQLite): recording, importing run folders, trends and baselines."""

from __future__ import annotations

import json

import pytest

from hil.measure.history import (DEFAULT_HISTORY, Baseline, HistoryDB, HistoryError, default_history_path,
                         load_baseline)
from hil.measure.figure import NOT_MEASURED
from hil.measure.records import FigureRecord, TestRecord
from hil.measure.runfolder import RESULTS_FILE, RunFolder

PROV = {"image": "rk3576-debian12-v1.0.img", "kernel": "6.1.99", "rknpu_driver": "0.9.8",
        "rkllm_runtime": "1.2.1", "rknn_runtime": "2.3.2", "model": "qwen2-vl-2b", "model_sha256": "ab" * 32}


def _measure(name, samples, unit="tok/s", better="higher"):
    ordered = sorted(samples)
    return {"name": name, "unit": unit, "samples": samples, "n": len(samples), "median": ordered[len(ordered) // 2],
            "iqr": 0.1, "better": better, "verdict": "pass", "limit": None, "comparison": None}


def _test(board, test, outcome="passed", measurements=()):
    return TestRecord(board=board, test=test, nodeid=f"{test}[{board}]", outcome=outcome, duration=1.5,
                      message=None if outcome == "passed" else "it broke", finished="2026-11-26T10:20:00",
                      measurements=list(measurements))


def make_run(results, run_id, started, *, boards=("board-0",), decode=None, boot=None, outcome="passed",
             prov=None, finished=True) -> RunFolder:
    """A run folder like the suite writes: provenance, a boot test and a decode test per board."""
    folder = RunFolder.create(results, run_id=run_id, options={"repeat": 5})
    folder.update_info(started=started)
    for board in boards:
        folder.append({"type": "provenance", "board": board, "data": {**PROV, **(prov or {})}})
        folder.append(_test(board, "tests/test_boot.py::test_boot", measurements=[
            _measure("boot_to_shell_s", boot or [20.0, 20.1, 20.2], "s", "lower")]))
        folder.append(_test(board, "tests/test_text_inference.py::test_decode", outcome, [
            _measure("text_decode_tokens_per_s", decode or [14.5, 14.6, 14.55, 14.52, 14.58])]))
    if finished:
        folder.update_info(finished=started.replace("T10:", "T11:"), exitstatus=0 if outcome == "passed" else 1)
    return folder


@pytest.fixture
def db(tmp_path):
    with HistoryDB(tmp_path / "hist" / "history.sqlite") as history:
        yield history


def test_record_round_trip(db, tmp_path):
    db.record_run({"run_id": "r1", "started": "2026-11-26T10:00:00+01:00", "finished": None,
                   "options": {"model": "qwen2-vl-2b"}}, run_dir=tmp_path / "r1")
    db.record_provenance("r1", "board-0", {"image": "a.img", "kernel": "6.1.99"})
    merged = db.record_provenance("r1", "board-0", {"model": "qwen2-vl-2b", "rkllm_runtime": "1.2.1",
                                                    "temperature_c": 41.0})
    assert merged == {"image": "a.img", "kernel": "6.1.99", "model": "qwen2-vl-2b", "rkllm_runtime": "1.2.1",
                      "temperature_c": 41.0}
    db.record_test("r1", _test("board-0", "t::decode", "passed", [_measure("decode", [1.0, 2.0, 3.0])]))
    db.record_test("r1", _test("board-0", "t::other", "failed"))

    [run] = db.runs()
    assert run["run_id"] == "r1" and run["board"] == "board-0" and run["verdict"] == "failed"
    assert (run["image"], run["model"], run["runtime"], run["kernel"]) == ("a.img", "qwen2-vl-2b", "1.2.1", "6.1.99")
    assert run["provenance"]["temperature_c"] == 41.0
    assert run["options"] == {"model": "qwen2-vl-2b"} and run["run_dir"] == str(tmp_path / "r1")
    assert (run["tests"], run["failed"]) == (2, 1)

    m = db.measurements("r1")
    assert list(m) == [("t::decode", "decode")]
    assert m[("t::decode", "decode")]["samples"] == [1.0, 2.0, 3.0]
    assert m[("t::decode", "decode")]["median"] == 2.0 and m[("t::decode", "decode")]["unit"] == "tok/s"

    db.finish_run("r1", "2026-11-26T11:00:00+01:00", 1)
    assert db.runs()[0]["finished"] == "2026-11-26T11:00:00+01:00" and db.runs()[0]["exitstatus"] == 1


def test_every_write_is_committed(db):
    """Another process (here: another connection) sees each write at once, so a kill loses nothing."""
    db.record_run({"run_id": "r1", "started": "2026-11-26T10:00:00"})
    db.record_test("r1", _test("board-0", "t::a", "passed", [_measure("x", [1.0, 2.0, 3.0])]))
    with HistoryDB(db.path) as other:
        assert other.has_run("r1")
        assert other.measurements("r1", "board-0")[("t::a", "x")]["samples"] == [1.0, 2.0, 3.0]
        assert other.runs()[0]["verdict"] == "incomplete"  # never finished


def test_rerecorded_test_replaces_its_measurements(db):
    db.record_test("r1", _test("b", "t::a", "passed", [_measure("x", [1.0, 2.0, 3.0]), _measure("y", [1.0])]))
    db.record_test("r1", _test("b", "t::a", "failed", [_measure("x", [4.0, 5.0, 6.0])]))
    assert list(db.measurements("r1", "b")) == [("t::a", "x")]
    assert db.measurements("r1", "b")[("t::a", "x")]["samples"] == [4.0, 5.0, 6.0]
    assert db.tests("r1")[0]["outcome"] == "failed"


def test_import_is_idempotent(db, tmp_path):
    folder = make_run(tmp_path / "results", "20261126-100000-aaaa", "2026-11-26T10:00:00+01:00",
                      boards=("board-0", "board-1"))
    assert db.import_run(folder) == "20261126-100000-aaaa"
    first = (db.runs(), db.measurements(folder.run_id, "board-1"))
    db.import_run(folder.path)
    assert (db.runs(), db.measurements(folder.run_id, "board-1")) == first
    assert [r["board"] for r in first[0]] == ["board-0", "board-1"]
    assert all(r["verdict"] == "passed" for r in first[0])
    assert len(first[1]) == 2


def test_killed_run_folder_is_imported_without_its_torn_line(db, tmp_path):
    folder = make_run(tmp_path / "results", "20261126-100000-dead", "2026-11-26T10:00:00", finished=False)
    with open(folder.path / RESULTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(_test("board-0", "tests/test_late.py::test_late").to_dict())[:40])  # killed mid-write
    db.import_run(folder)
    [run] = db.runs()
    assert run["verdict"] == "incomplete" and run["finished"] is None
    assert [t["test"] for t in db.tests(folder.run_id)] == ["tests/test_boot.py::test_boot",
                                                            "tests/test_text_inference.py::test_decode"]
    assert db.measurements(folder.run_id)[("tests/test_text_inference.py::test_decode",
                                           "text_decode_tokens_per_s")]["n"] == 5


def test_runs_newest_first_filtered_and_limited(db, tmp_path):
    results = tmp_path / "results"
    db.import_run(make_run(results, "r-old", "2026-11-20T10:00:00", boards=("board-0", "board-1")))
    db.import_run(make_run(results, "r-mid", "2026-11-22T10:00:00", outcome="failed"))
    db.import_run(make_run(results, "r-new", "2026-11-24T10:00:00", prov={"model": "qwen2.5-1.5b"}))
    assert [(r["run_id"], r["board"]) for r in db.runs()] == [
        ("r-new", "board-0"), ("r-mid", "board-0"), ("r-old", "board-0"), ("r-old", "board-1")]
    assert [r["verdict"] for r in db.runs()] == ["passed", "failed", "passed", "passed"]
    assert [r["run_id"] for r in db.runs(board="board-1")] == ["r-old"]
    assert [r["run_id"] for r in db.runs(model="qwen2.5-1.5b")] == ["r-new"]
    assert [r["run_id"] for r in db.runs(limit=2)] == ["r-new", "r-mid"]


def test_trend_oldest_first_per_board_model_runtime(db, tmp_path):
    results = tmp_path / "results"
    for i, (day, rt) in enumerate([("20", "1.2.1"), ("22", "1.2.1"), ("24", "1.3.0"), ("26", "1.2.1")]):
        db.import_run(make_run(results, f"r{i}", f"2026-11-{day}T10:00:00", boards=("board-0", "board-1"),
                               decode=[14.0 - i, 14.1 - i, 14.2 - i], prov={"rkllm_runtime": rt}))
    points = db.trend("text_decode_tokens_per_s", board="board-0", runtime="1.2.1")
    assert [(p.run_id, p.median, p.n) for p in points] == [("r0", 14.1, 3), ("r1", 13.1, 3), ("r3", 11.1, 3)]
    assert [p.run_id for p in db.trend("text_decode_tokens_per_s", board="board-0", limit=2)] == ["r2", "r3"]
    assert len(db.trend("text_decode_tokens_per_s")) == 8  # both boards
    assert db.trend("text_decode_tokens_per_s", model="no-such-model") == []


def test_trend_takes_the_first_test_that_measured_the_figure(db):
    db.record_run({"run_id": "r1", "started": "2026-11-26T10:00:00"})
    db.record_test("r1", _test("b", "t::first", "passed", [_measure("x", [1.0, 1.0, 1.0])]))
    db.record_test("r1", _test("b", "t::second", "passed", [_measure("x", [9.0, 9.0, 9.0])]))
    assert [p.median for p in db.trend("x")] == [1.0]


def test_accept_baseline_and_auto_lookup(db, tmp_path):
    results = tmp_path / "results"
    db.import_run(make_run(results, "r-base", "2026-11-20T10:00:00", decode=[14.5, 14.6, 14.7]))
    db.import_run(make_run(results, "r-next", "2026-11-22T10:00:00", decode=[13.5, 13.6, 13.7]))
    assert db.baseline_for("board-0", "qwen2-vl-2b", "1.2.1") is None
    assert db.accept_baseline("r-base") == [("board-0", "qwen2-vl-2b", "1.2.1")]
    assert db.baseline_for("board-0", "qwen2-vl-2b", "1.2.1") == "r-base"
    assert db.baseline_for("board-0", "qwen2-vl-2b", "1.3.0") is None

    base = load_baseline("auto", history=db, board="board-0", model="qwen2-vl-2b", runtime="1.2.1")
    assert isinstance(base, Baseline) and base.run_id == "r-base"
    assert base.samples("tests/test_text_inference.py::test_decode", "text_decode_tokens_per_s") == [14.5, 14.6, 14.7]
    assert base.samples("tests/test_text_inference.py::test_decode", "not_measured") is None

    db.accept_baseline("r-next")  # a later accept replaces the earlier one
    assert load_baseline("auto", history=db.path, board="board-0", model="qwen2-vl-2b",
                         runtime="1.2.1").run_id == "r-next"


def test_accepting_an_unknown_run_says_how_to_find_runs(db):
    with pytest.raises(HistoryError, match=r"run 20990101-000000-ffff is not in the history.*`hil history`"):
        db.accept_baseline("20990101-000000-ffff")


def test_auto_without_accepted_baseline_says_how_to_accept(db, tmp_path):
    db.import_run(make_run(tmp_path / "results", "r1", "2026-11-20T10:00:00"))
    with pytest.raises(HistoryError, match=r"no baseline accepted for board 'board-0'.*hil baseline accept RUN"):
        load_baseline("auto", history=db, board="board-0", model="qwen2-vl-2b", runtime="1.2.1")
    with pytest.raises(HistoryError, match="needs the history DB"):
        load_baseline("auto", history=None, board="board-0")


def test_baseline_from_run_id_and_from_folder(db, tmp_path):
    folder = make_run(tmp_path / "results", "r-two", "2026-11-20T10:00:00", boards=("board-0", "board-1"),
                      decode=[10.0, 11.0, 12.0])
    key = ("tests/test_boot.py::test_boot", "boot_to_shell_s")
    for spec in (str(folder.path), str(folder.path / RESULTS_FILE)):  # not in the history: read from disk
        base = load_baseline(spec, history=db, board="board-1")
        assert (base.run_id, base.board, base.samples(*key)) == ("r-two", "board-1", [20.0, 20.1, 20.2])
    db.import_run(folder)
    base = load_baseline("r-two", history=db, board="board-0")
    assert (base.run_id, base.board) == ("r-two", "board-0")
    assert base.samples("tests/test_text_inference.py::test_decode", "text_decode_tokens_per_s") == [10.0, 11.0, 12.0]


def test_baseline_of_another_board(db, tmp_path):
    one = make_run(tmp_path / "results", "r-one", "2026-11-20T10:00:00", boards=("board-7",))
    two = make_run(tmp_path / "results", "r-two", "2026-11-20T10:00:00", boards=("board-0", "board-1"))
    # a single-board run is a baseline for any board (a reference board)
    assert load_baseline(str(one.path), history=None, board="board-0").board == "board-7"
    with pytest.raises(HistoryError, match=r"ran on boards board-0, board-1, not on 'board-5'"):
        load_baseline(str(two.path), history=None, board="board-5")


def test_unknown_baseline_spec_is_an_error(db, tmp_path):
    with pytest.raises(HistoryError, match=r"neither a run in the history .* nor an existing run folder.*hil history"):
        load_baseline("20990101-000000-ffff", history=db, board="board-0")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HistoryError, match="neither run.json nor results.jsonl"):
        load_baseline(str(tmp_path / "empty"), history=db, board="board-0")


def test_measurements_of_a_multi_board_run_need_a_board(db, tmp_path):
    db.import_run(make_run(tmp_path / "results", "r1", "2026-11-20T10:00:00", boards=("board-0", "board-1")))
    with pytest.raises(HistoryError, match=r"several boards \(board-0, board-1\)"):
        db.measurements("r1")
    assert len(db.measurements("r1", "board-1")) == 2


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    bad = tmp_path / "history.sqlite"
    bad.write_text("this is not SQLite, just text that is long enough to have a header" * 10)
    with pytest.raises(HistoryError, match=r"history.sqlite cannot be used as the history DB.*--db PATH"):
        HistoryDB(bad)


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.delenv("HIL_HISTORY", raising=False)
    assert str(default_history_path()) == DEFAULT_HISTORY
    monkeypatch.setenv("HIL_HISTORY", str(tmp_path / "h.sqlite"))
    assert default_history_path() == tmp_path / "h.sqlite"


def test_baseline_samples_by_node_id_too(db, tmp_path):
    """The suite may ask by pytest node id; on the same board that finds the same samples."""
    folder = make_run(tmp_path / "results", "r1", "2026-11-20T10:00:00", decode=[10.0, 11.0, 12.0])
    from_folder = load_baseline(str(folder.path), history=None, board="board-0")
    db.import_run(folder)
    from_db = load_baseline("r1", history=db, board="board-0")
    for base in (from_folder, from_db):
        assert base.samples("tests/test_text_inference.py::test_decode[board-0]",
                            "text_decode_tokens_per_s") == [10.0, 11.0, 12.0]
        assert base.samples("tests/test_text_inference.py::test_decode[board-9]", "text_decode_tokens_per_s") is None


def test_run_dir_may_come_with_the_info(db):
    db.record_run({"run_id": "r1", "started": "2026-11-20T10:00:00", "run_dir": "results/r1"})
    assert db.runs()[0]["run_dir"] == "results/r1"


def test_a_figure_not_measured_is_stored_without_samples(db, tmp_path):
    """A declared figure its test never reached: kept with its verdict, left out of trends and baselines."""
    unreached = FigureRecord(name="text_decode_tokens_per_s", verdict=NOT_MEASURED,
                             violation="not measured: rkllm exited with status 139")
    folder = RunFolder.create(tmp_path / "results", run_id="r-nm")
    folder.update_info(started="2026-11-26T10:00:00", finished="2026-11-26T11:00:00", exitstatus=1)
    folder.append(_test("board-0", "tests/test_text_inference.py::test_decode", "failed",
                        [_measure("text_prefill_ms", [810.0, 812.0, 811.0], "ms", "lower"), unreached]))
    db.import_run(folder)

    stored = db.measurements("r-nm")[("tests/test_text_inference.py::test_decode", "text_decode_tokens_per_s")]
    assert (stored["verdict"], stored["samples"], stored["n"], stored["median"]) == (NOT_MEASURED, [], 0, None)
    assert db.measurements("r-nm")[("tests/test_text_inference.py::test_decode", "text_prefill_ms")]["n"] == 3
    assert db.trend("text_decode_tokens_per_s") == []
    assert [p.median for p in db.trend("text_prefill_ms")] == [811.0]
    for spec in ("r-nm", str(folder.path)):
        base = load_baseline(spec, history=db, board="board-0")
        assert base.samples("tests/test_text_inference.py::test_decode", "text_decode_tokens_per_s") is None
        assert base.samples("tests/test_text_inference.py::test_decode", "text_prefill_ms") == [810.0, 812.0, 811.0]
