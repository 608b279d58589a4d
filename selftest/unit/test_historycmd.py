"""``hil history`` and ``hil baseline``: what they print and the exit codes they return."""

from __future__ import annotations

import argparse

import pytest

from hil.measure.history import HistoryDB
from hil.measure.historycmd import add_commands, table
from selftest.unit.test_history import make_run


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hil")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def history(tmp_path):
    """Three runs of board-0 (decode speed falling) and one of board-1, imported into a DB."""
    results, db_path = tmp_path / "results", tmp_path / "history.sqlite"
    with HistoryDB(db_path) as db:
        db.import_run(make_run(results, "20261120-100000-aaaa", "2026-11-20T10:00:00",
                               decode=[14.0, 14.0, 14.0], boot=[20.0, 20.0, 20.0]))
        db.import_run(make_run(results, "20261121-100000-bbbb", "2026-11-21T10:00:00", boards=("board-1",),
                               decode=[9.0, 9.0, 9.0]))
        db.import_run(make_run(results, "20261122-100000-cccc", "2026-11-22T10:00:00",
                               decode=[13.3, 13.3, 13.3], boot=[21.0, 21.0, 21.0], outcome="failed"))
        db.import_run(make_run(results, "20261124-100000-dddd", "2026-11-24T10:00:00",
                               decode=[12.635, 12.635, 12.635], boot=[21.0, 21.0, 21.0]))
    return db_path


def _lines(out: str) -> dict[str, str]:
    return {line.split()[0]: line for line in out.splitlines() if line.startswith("2026")}


def test_history_lists_runs_with_trend(history, capsys):
    assert run(["history", "--db", str(history)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:7] == ["RUN", "STARTED", "BOARD", "IMAGE", "RUNTIME", "MODEL", "VERDICT"]
    assert header[7:] == ["boot_to_shell_s", "text_decode_tokens_per_s"]
    lines = _lines(out)
    assert list(lines) == ["20261124-100000-dddd", "20261122-100000-cccc", "20261121-100000-bbbb",
                           "20261120-100000-aaaa"]
    newest = lines["20261124-100000-dddd"]
    assert "2026-11-24 10:00" in newest and "board-0" in newest and "rk3576-debian12-v1.0.img" in newest
    assert "1.2.1" in newest and "qwen2-vl-2b" in newest and "passed" in newest
    assert "12.63 (-5.0 %)" in newest and "21.00 (+0.0 %)" in newest  # vs the run of 22 Nov
    assert "failed" in lines["20261122-100000-cccc"] and "13.30 (-5.0 %)" in lines["20261122-100000-cccc"]
    assert "21.00 (+5.0 %)" in lines["20261122-100000-cccc"]
    # the first run of a board has nothing to compare with; board-1 is not compared with board-0
    assert "14.00" in lines["20261120-100000-aaaa"] and "%" not in lines["20261120-100000-aaaa"]
    assert "9.000" in lines["20261121-100000-bbbb"] and "%" not in lines["20261121-100000-bbbb"]


def test_history_filters_figures_and_limit(history, capsys):
    assert run(["history", "--db", str(history), "--board", "board-0", "--figure", "text_decode_tokens_per_s",
                "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[7:] == ["text_decode_tokens_per_s"]
    assert list(_lines(out)) == ["20261124-100000-dddd", "20261122-100000-cccc"]
    assert "2 of 3 entries" in out
    # the trend of the oldest shown run still refers to the run before it, hidden by --limit
    assert "13.30 (-5.0 %)" in _lines(out)["20261122-100000-cccc"]


def test_history_without_db_is_an_error(tmp_path, capsys):
    assert run(["history", "--db", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no history DB at") and "--db PATH" in err
    assert not (tmp_path / "none.sqlite").exists()


def test_history_uses_the_env_var(history, monkeypatch, capsys):
    monkeypatch.setenv("HIL_HISTORY", str(history))
    assert run(["history", "--model", "no-such-model"]) == 0
    assert "no runs matching model no-such-model" in capsys.readouterr().out


def test_baseline_accept_by_id_then_show(history, capsys):
    assert run(["baseline", "show", "--db", str(history)]) == 0
    assert "no baseline accepted" in capsys.readouterr().out
    assert run(["baseline", "accept", "20261120-100000-aaaa", "--db", str(history)]) == 0
    assert "baseline of board board-0, model qwen2-vl-2b, runtime 1.2.1: run 20261120-100000-aaaa" in \
        capsys.readouterr().out
    assert run(["baseline", "show", "--db", str(history)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["BOARD", "MODEL", "RUNTIME", "RUN", "RUN", "STARTED", "ACCEPTED"]
    assert out[1].split()[:4] == ["board-0", "qwen2-vl-2b", "1.2.1", "20261120-100000-aaaa"]
    with HistoryDB(history) as db:
        assert db.baseline_for("board-0", "qwen2-vl-2b", "1.2.1") == "20261120-100000-aaaa"
    # the history marks it
    assert run(["history", "--db", str(history)]) == 0
    out = capsys.readouterr().out
    assert "20261120-100000-aaaa *" in out and "* accepted baseline" in out


def test_baseline_accept_a_folder_imports_it(tmp_path, capsys):
    folder = make_run(tmp_path / "results", "20261130-100000-eeee", "2026-11-30T10:00:00", outcome="failed")
    db_path = tmp_path / "new" / "history.sqlite"
    assert run(["baseline", "accept", str(folder.path), "--db", str(db_path)]) == 0
    captured = capsys.readouterr()
    assert "run 20261130-100000-eeee" in captured.out
    assert "warning: run 20261130-100000-eeee is failed" in captured.err
    with HistoryDB(db_path) as db:
        assert db.baseline_for("board-0", "qwen2-vl-2b", "1.2.1") == "20261130-100000-eeee"
        assert len(db.measurements("20261130-100000-eeee")) == 2


def test_baseline_accept_unknown_run(history, capsys):
    assert run(["baseline", "accept", "20990101-000000-ffff", "--db", str(history)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run 20990101-000000-ffff is not in the history") and "`hil history`" in err


def test_negative_limit_is_refused(history, capsys):
    assert run(["history", "--db", str(history), "--limit", "-1"]) == 2
    assert "--limit -1" in capsys.readouterr().err


def test_table_aligns_columns():
    assert table(["A", "BB"], [["xxx", "y"], ["z", "wwww"]]).splitlines() == ["A    BB", "xxx  y", "z    wwww"]
