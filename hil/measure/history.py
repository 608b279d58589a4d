"""The results history: every run's provenance, tests and measured samples in one SQLite file.

Run folders (``hil.measure.runfolder``) hold one run each; the history holds them all, so a run can
be compared with an accepted baseline, and a figure followed across runs, per board,
image, runtime and model. The suite writes to it as it goes (a commit per write, WAL
journal, so a killed run loses nothing it had recorded); ``import_run`` records a run
folder after the fact (a run written without history, or one killed before its last
records), and is idempotent.

The baseline of a board, model and runtime is a run accepted with ``hil baseline accept
RUN``; ``load_baseline("auto", ...)`` finds it. A baseline can also be a run id in the
history or a run folder, for one-off comparisons.

Errors are ``HistoryError``, whose message names the cause and what to do.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import urllib.parse
from collections import namedtuple
from pathlib import Path

import attr

from hil.measure.records import TestRecord
from hil.measure.runfolder import RESULTS_FILE, RunFolder, RunFolderError, now_iso
from hil.suite.redact import redact

DEFAULT_HISTORY = "results/history.sqlite"
HISTORY_ENV = "HIL_HISTORY"
SCHEMA_VERSION = 1
PROVENANCE_KEYS = ("image", "kernel", "rknpu_driver", "rkllm_runtime", "rknn_runtime", "model", "model_sha256")
FAILED_OUTCOMES = ("failed", "error")

TrendPoint = namedtuple("TrendPoint", "run_id started board median n")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started TEXT, finished TEXT, exitstatus INTEGER, run_dir TEXT,
    options TEXT, info TEXT);
CREATE TABLE IF NOT EXISTS provenance (
    run_id TEXT NOT NULL, board TEXT NOT NULL, image TEXT, kernel TEXT, rknpu_driver TEXT,
    rkllm_runtime TEXT, rknn_runtime TEXT, model TEXT, model_sha256 TEXT, data TEXT,
    PRIMARY KEY (run_id, board));
CREATE TABLE IF NOT EXISTS tests (
    run_id TEXT NOT NULL, board TEXT NOT NULL, test TEXT NOT NULL, nodeid TEXT, outcome TEXT,
    duration REAL, message TEXT, finished TEXT,
    PRIMARY KEY (run_id, board, test));
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL, board TEXT NOT NULL, test TEXT NOT NULL, name TEXT NOT NULL, unit TEXT,
    median REAL, iqr REAL, n INTEGER, samples TEXT, verdict TEXT, better TEXT, "limit" TEXT,
    comparison TEXT,
    PRIMARY KEY (run_id, board, test, name));
CREATE INDEX IF NOT EXISTS measurements_name ON measurements (name, board);
CREATE TABLE IF NOT EXISTS baselines (
    board TEXT NOT NULL, model TEXT NOT NULL, runtime TEXT NOT NULL, run_id TEXT NOT NULL,
    accepted TEXT, PRIMARY KEY (board, model, runtime));
"""


class HistoryError(RuntimeError):
    """The history cannot answer; the message names the cause and the fix."""


def default_history_path() -> Path:
    """``$HIL_HISTORY``, else ``results/history.sqlite`` under the current directory."""
    return Path(os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY)


def _label(value) -> str | None:
    """A provenance value as the short text the history is keyed and listed by."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        for key in ("name", "version", "file", "path"):
            if value.get(key):
                return str(value[key])
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _json(value) -> str | None:
    return None if value is None else redact.dumps(value, default=str, ensure_ascii=False)


def _unjson(text):
    return None if text is None else json.loads(text)


def _key(value) -> str:
    """Baselines are keyed by text; an unknown model or runtime is the empty string."""
    return _label(value) or ""


def read_run_folder(folder: RunFolder | Path | str) -> tuple[RunFolder, dict, dict, list[TestRecord]]:
    """``(folder, run.json content, provenance by board, test records)`` of a run folder (or its
    ``run.json`` / ``results.jsonl``), checked as ``HistoryDB.import_run`` needs it: a
    ``HistoryError`` names what is wrong (no run folder, a file that is not UTF-8 JSON with
    the byte offset, a figure whose samples are not finite numbers)."""
    where = folder.path if isinstance(folder, RunFolder) else folder
    try:
        if not isinstance(folder, RunFolder):
            folder = RunFolder.open(folder)
        info = folder.info(strict=True)
        provenance = folder.provenance()
        tests = folder.tests()
        check_samples(tests, folder.path / RESULTS_FILE)
    except (RunFolderError, HistoryError) as e:
        raise HistoryError(f"cannot import {where}: {e}") from None
    return folder, info, provenance, tests


class HistoryDB:
    """One history file. Use as a context manager, or call ``close()``.

    ``readonly`` opens an existing file for reading only (a report's trend charts): nothing is
    created, and the file is never written (SQLite may add its ``-wal``/``-shm`` companions
    next to a WAL-mode file, as any reader does).
    """

    def __init__(self, path: Path | str, *, timeout: float = 30.0, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            self._open_readonly(timeout)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HistoryError(f"cannot create the directory of the history DB {self.path}: {e.strerror}; "
                               f"pass --db PATH or set {HISTORY_ENV} to a writable place") from e
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            if hasattr(self, "_db"):
                self._db.close()
            raise HistoryError(f"{self.path} cannot be used as the history DB ({e}); pass --db PATH or set "
                               f"{HISTORY_ENV} to a history file, or move this file away to start a new one") from e

    def _open_readonly(self, timeout: float) -> None:
        if not self.path.is_file():
            raise HistoryError(f"no history DB at {self.path}: pass the SQLite file a run wrote (its run.json "
                               f"names it)")
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        for mode in ("?mode=ro", "?mode=ro&immutable=1"):  # immutable: a file in a read-only directory
            try:
                self._db = sqlite3.connect(uri + mode, uri=True, timeout=timeout)
                self._db.row_factory = sqlite3.Row
                self._db.execute("SELECT run_id FROM runs LIMIT 1").fetchall()
                self._db.execute("SELECT name FROM measurements LIMIT 1").fetchall()
                return
            except sqlite3.OperationalError as e:
                if hasattr(self, "_db"):
                    self._db.close()
                    del self._db
                if "no such table" in str(e):
                    raise HistoryError(f"{self.path} is not a history DB (it has no runs or measurements table): "
                                       f"pass the SQLite file a run wrote") from e
                error = e
            except sqlite3.DatabaseError as e:
                if hasattr(self, "_db"):
                    self._db.close()
                raise HistoryError(f"{self.path} cannot be read as a history DB ({e}): pass the SQLite file a "
                                   f"run wrote") from e
        raise HistoryError(f"cannot open the history DB {self.path} for reading ({error})") from error

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "HistoryDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # writing -----------------------------------------------------------------------------
    def record_run(self, info: dict, *, run_dir: Path | str | None = None) -> str:
        """Record a run's ``run.json`` content; later calls fill in what earlier ones lacked."""
        run_id = info.get("run_id")
        run_dir = run_dir if run_dir is not None else info.get("run_dir")
        if not run_id:
            raise HistoryError("run info without a run_id cannot be recorded: pass the content of a run's run.json")
        with self._db:
            self._db.execute(
                """INSERT INTO runs (run_id, started, finished, exitstatus, run_dir, options, info)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET
                     started = COALESCE(excluded.started, started),
                     finished = COALESCE(excluded.finished, finished),
                     exitstatus = COALESCE(excluded.exitstatus, exitstatus),
                     run_dir = COALESCE(excluded.run_dir, run_dir),
                     options = COALESCE(excluded.options, options),
                     info = COALESCE(excluded.info, info)""",
                (run_id, info.get("started"), info.get("finished"), info.get("exitstatus"),
                 str(run_dir) if run_dir is not None else None, _json(info.get("options")), _json(info)))
        return run_id

    def _ensure_run(self, run_id: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))

    def record_provenance(self, run_id: str, board: str, data: dict) -> dict:
        """Add ``data`` to what is known of this run's board; returns the merged data."""
        board = board or ""
        with self._db:
            self._ensure_run(run_id)
            row = self._db.execute("SELECT data FROM provenance WHERE run_id = ? AND board = ?",
                                   (run_id, board)).fetchone()
            merged = {**(_unjson(row["data"]) if row and row["data"] else {}), **(data or {})}
            self._db.execute(
                f"""INSERT OR REPLACE INTO provenance (run_id, board, {", ".join(PROVENANCE_KEYS)}, data)
                    VALUES (?, ?, {", ".join("?" * len(PROVENANCE_KEYS))}, ?)""",
                (run_id, board, *(_label(merged.get(k)) for k in PROVENANCE_KEYS), _json(merged)))
        return merged

    def record_test(self, run_id: str, record: TestRecord) -> None:
        """Record a test with its measurements (replacing an earlier one), keyed by its ``test_id``
        (the test without its board, as runs of different boards share it)."""
        board, test = record.board or "", record.test_id
        rows = [(run_id, board, test, m.name, m.unit, m.median, m.iqr, m.n, _json(list(m.samples or [])),
                 m.verdict, m.better, _json(m.limit), _json(m.comparison)) for m in record.measurements]
        with self._db:
            self._ensure_run(run_id)
            self._db.execute(
                """INSERT OR REPLACE INTO tests (run_id, board, test, nodeid, outcome, duration, message, finished)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, board, test, record.nodeid, record.outcome, record.duration, record.message,
                 record.finished))
            self._db.execute("DELETE FROM measurements WHERE run_id = ? AND board = ? AND test = ?",
                             (run_id, board, test))
            self._db.executemany(
                """INSERT OR REPLACE INTO measurements (run_id, board, test, name, unit, median, iqr, n, samples,
                     verdict, better, "limit", comparison) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)

    def finish_run(self, run_id: str, finished: str | None = None, exitstatus: int | None = None) -> None:
        with self._db:
            self._ensure_run(run_id)
            self._db.execute("UPDATE runs SET finished = ?, exitstatus = ? WHERE run_id = ?",
                             (finished or now_iso(), exitstatus, run_id))

    def import_run(self, folder: RunFolder | Path | str) -> str:
        """Record everything a run folder holds (again: importing twice changes nothing).

        The folder is read and checked whole before anything is recorded: a ``run.json`` or
        ``results.jsonl`` that is not UTF-8 JSON, or a figure whose samples are not all finite
        numbers, is a ``HistoryError`` naming the file (and the test and figure) and the
        history is left as it was.
        """
        folder, info, provenance, tests = read_run_folder(folder)
        run_id = info.get("run_id") or folder.path.name
        self.record_run({**info, "run_id": run_id}, run_dir=folder.path.resolve())
        for board, data in provenance.items():
            self.record_provenance(run_id, board, data)
        for record in tests:
            if record.test_id:
                self.record_test(run_id, record)
        return run_id

    def accept_baseline(self, run_id: str) -> list[tuple[str, str, str]]:
        """Make ``run_id`` the baseline of each (board, model, runtime) it ran; returns those keys."""
        if not self.has_run(run_id):
            raise HistoryError(f"run {run_id} is not in the history {self.path}: list the recorded runs with "
                               f"`hil history`, or pass the run's folder to import it")
        keys = []
        for board in self._boards(run_id):
            prov = self.provenance(run_id, board)
            keys.append((board, _key(prov.get("model")), _key(prov.get("rkllm_runtime"))))
        if not keys:
            raise HistoryError(f"run {run_id} recorded no board (no provenance and no test), so it cannot be "
                               f"a baseline: accept a run that ran tests on a board")
        for board, _model, _runtime in keys:
            self.check_samples(run_id, board)
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO baselines (board, model, runtime, run_id, accepted) VALUES (?, ?, ?, ?, ?)",
                [(*key, run_id, now_iso()) for key in keys])
        return keys

    # reading -----------------------------------------------------------------------------
    def has_run(self, run_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def _boards(self, run_id: str) -> list[str]:
        rows = self._db.execute(
            """SELECT board FROM provenance WHERE run_id = ?
               UNION SELECT board FROM tests WHERE run_id = ? ORDER BY board""", (run_id, run_id)).fetchall()
        return [r["board"] for r in rows]

    def boards(self, run_id: str) -> list[str]:
        """The boards a run recorded provenance or tests for."""
        return self._boards(run_id)

    def check_samples(self, run_id: str, board: str) -> None:
        """``HistoryError`` naming the test and figure of this run and board whose recorded samples
        are not all finite numbers (a run imported by an older version, or an edited file)."""
        for (test, name), m in self.measurements(run_id, board).items():
            problem = _samples_problem(m["samples"])
            if problem:
                raise HistoryError(f"run {run_id} in {self.path}, board {board or '-'}, test {test}, figure {name}: "
                                   f"{problem}; it cannot be a baseline")

    def provenance(self, run_id: str, board: str) -> dict:
        row = self._db.execute("SELECT data FROM provenance WHERE run_id = ? AND board = ?",
                               (run_id, board or "")).fetchone()
        return _unjson(row["data"]) if row and row["data"] else {}

    def baseline_for(self, board: str, model: str | None, runtime: str | None) -> str | None:
        row = self._db.execute("SELECT run_id FROM baselines WHERE board = ? AND model = ? AND runtime = ?",
                               (board or "", _key(model), _key(runtime))).fetchone()
        return row["run_id"] if row else None

    def baselines(self) -> list[dict]:
        """Every accepted baseline, by board, model and runtime."""
        rows = self._db.execute("""SELECT b.board, b.model, b.runtime, b.run_id, b.accepted, r.started
                                   FROM baselines b LEFT JOIN runs r USING (run_id)
                                   ORDER BY b.board, b.model, b.runtime""").fetchall()
        return [dict(r) for r in rows]

    def runs(self, board: str | None = None, model: str | None = None, limit: int | None = 50) -> list[dict]:
        """Past runs, newest first: one entry per run and board, with its provenance and verdict.

        ``verdict`` is ``failed`` when any test failed or errored, ``incomplete`` when the
        run never finished (still running, or killed), ``no tests``, else ``passed``.
        """
        where, params = [], []
        if board is not None:
            where.append("rb.board = ?")
            params.append(board)
        if model is not None:
            where.append("p.model = ?")
            params.append(model)
        sql = f"""
            WITH rb AS (SELECT run_id, board FROM provenance UNION SELECT run_id, board FROM tests)
            SELECT r.run_id, r.started, r.finished, r.exitstatus, r.run_dir, r.options, rb.board, p.data,
                   (SELECT COUNT(*) FROM tests t WHERE t.run_id = r.run_id AND t.board = rb.board) AS n_tests,
                   (SELECT COUNT(*) FROM tests t WHERE t.run_id = r.run_id AND t.board = rb.board
                      AND t.outcome IN ('failed', 'error')) AS n_failed
            FROM runs r LEFT JOIN rb ON rb.run_id = r.run_id
                        LEFT JOIN provenance p ON p.run_id = r.run_id AND p.board = rb.board
            {"WHERE " + " AND ".join(where) if where else ""}
            ORDER BY r.started IS NULL, r.started DESC, r.run_id DESC, rb.board
            {"LIMIT ?" if limit else ""}"""
        if limit:
            params.append(int(limit))
        out = []
        for row in self._db.execute(sql, params).fetchall():
            prov = _unjson(row["data"]) if row["data"] else {}
            if row["n_failed"]:
                verdict = "failed"
            elif not row["finished"]:
                verdict = "incomplete"
            elif not row["n_tests"]:
                verdict = "no tests"
            else:
                verdict = "passed"
            out.append({
                "run_id": row["run_id"], "started": row["started"], "finished": row["finished"],
                "exitstatus": row["exitstatus"], "run_dir": row["run_dir"], "options": _unjson(row["options"]),
                "board": row["board"], "provenance": prov,
                **{k: _label(prov.get(k)) for k in PROVENANCE_KEYS},
                "runtime": _label(prov.get("rkllm_runtime")),
                "tests": row["n_tests"], "failed": row["n_failed"], "verdict": verdict,
            })
        return out

    def tests(self, run_id: str, board: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM tests WHERE run_id = ?", [run_id]
        if board is not None:
            sql += " AND board = ?"
            params.append(board)
        return [dict(r) for r in self._db.execute(sql + " ORDER BY rowid", params).fetchall()]

    def measurements(self, run_id: str, board: str | None = None) -> dict[tuple[str, str], dict]:
        """A run's measurements by (test, figure name), samples included.

        ``board`` may be left out when the run had one board only.
        """
        if board is None:
            boards = sorted({r["board"] for r in self._db.execute(
                "SELECT DISTINCT board FROM measurements WHERE run_id = ?", (run_id,)).fetchall()})
            if len(boards) > 1:
                raise HistoryError(f"run {run_id} measured several boards ({', '.join(boards)}): "
                                   f"say which one (--board)")
            board = boards[0] if boards else ""
        out = {}
        rows = self._db.execute("SELECT * FROM measurements WHERE run_id = ? AND board = ? ORDER BY rowid",
                                (run_id, board)).fetchall()
        for r in rows:
            out[(r["test"], r["name"])] = {
                "board": r["board"], "test": r["test"], "name": r["name"], "unit": r["unit"],
                "median": r["median"], "iqr": r["iqr"], "n": r["n"], "samples": _unjson(r["samples"]) or [],
                "verdict": r["verdict"], "better": r["better"], "limit": _unjson(r["limit"]),
                "comparison": _unjson(r["comparison"]),
            }
        return out

    def trend(self, name: str, board: str | None = None, model: str | None = None, runtime: str | None = None,
              limit: int | None = 50) -> list[TrendPoint]:
        """One figure across runs, oldest first: its median in each run (and board) that measured it.

        When several tests of a run measured the figure, the first one recorded counts.
        """
        where, params = ["m.name = ?", "m.median IS NOT NULL"], [name]
        for column, value in (("m.board", board), ("p.model", model), ("p.rkllm_runtime", runtime)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"""
            SELECT m.run_id, r.started, m.board, m.median, m.n, MIN(m.rowid) AS first
            FROM measurements m JOIN runs r ON r.run_id = m.run_id
                 LEFT JOIN provenance p ON p.run_id = m.run_id AND p.board = m.board
            WHERE {" AND ".join(where)}
            GROUP BY m.run_id, m.board
            ORDER BY r.started IS NULL, r.started DESC, m.run_id DESC, m.board
            {"LIMIT ?" if limit else ""}"""
        if limit:
            params.append(int(limit))
        rows = self._db.execute(sql, params).fetchall()
        # SQLite's bare columns with MIN() come from the row holding the minimum: the first test
        return [TrendPoint(r["run_id"], r["started"], r["board"], r["median"], r["n"]) for r in reversed(rows)]


@attr.s
class Baseline:
    """The samples of one board's run that this run's figures are compared with."""

    run_id = attr.ib()
    board = attr.ib(default="")
    source = attr.ib(default="")  # where it came from, for messages
    _measurements = attr.ib(factory=dict, repr=False)  # (test, name) -> list of samples

    def samples(self, test: str, name: str) -> list[float] | None:
        """The baseline's samples of figure ``name`` of ``test``, or None when it did not measure it.

        ``test`` is the test's id without board (a record's ``test``); its pytest node id
        works too when the baseline ran on the same board.
        """
        values = self._measurements.get((test, name))
        return list(values) if values else None


def _samples_problem(samples) -> str | None:
    """What is wrong with a figure's samples (not a list, or an entry that is not a finite
    number), or None when they are fine."""
    if samples is None:
        return None
    if not isinstance(samples, (list, tuple)):
        return f"its samples are {_short(samples)}, not a list of numbers"
    for i, x in enumerate(samples, 1):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return f"sample {i} of {len(samples)} is {_short(x)}, not a finite number"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_samples(tests: list[TestRecord], path: Path | str) -> None:
    """``HistoryError`` naming ``path`` (the results file), the test and the figure of the first
    figure whose samples are not all finite numbers: such a run can be neither recorded nor a
    baseline (its figures could not be compared)."""
    for record in tests:
        for m in record.measurements:
            problem = _samples_problem(m.samples)
            if problem:
                raise HistoryError(f"{path}: test {record.nodeid or record.test_id or '?'}, figure {m.name}: "
                                   f"{problem} (the suite writes numbers: this file was edited or damaged)")


def _pick_board(boards: list[str], board: str | None, where: str) -> str:
    if board in boards:
        return board
    if len(boards) == 1:
        return boards[0]
    if not boards:
        raise HistoryError(f"{where} recorded no test, so it cannot be a baseline: pick a run that measured "
                           f"something (`hil history` lists them)")
    raise HistoryError(f"{where} ran on boards {', '.join(boards)}, not on {board!r}: pick a baseline run of "
                       f"board {board!r} (`hil history --board {board}` lists them)")


def _from_history(db: HistoryDB, run_id: str, board: str | None) -> Baseline:
    which = _pick_board(db.boards(run_id), board, f"baseline run {run_id}")
    db.check_samples(run_id, which)
    found = db.measurements(run_id, which)
    measured = {key: m["samples"] for key, m in found.items()}
    nodeids = {t["test"]: t["nodeid"] for t in db.tests(run_id, which) if t["nodeid"]}
    return Baseline(run_id, which, f"history {db.path}", _by_node_id_too(measured, nodeids))


def _by_node_id_too(measured: dict, nodeids: dict) -> dict:
    """``measured`` by (test id, figure), each also under its test's node id (same board),
    never over a test id."""
    for (test, name), samples in list(measured.items()):
        measured.setdefault((nodeids.get(test, test), name), samples)
    return measured


def _from_folder(path: Path, board: str | None) -> Baseline:
    folder = RunFolder.open(path)
    tests = folder.tests()
    boards = sorted({t.board or "" for t in tests} | set(folder.provenance()))
    which = _pick_board(boards, board, f"baseline run folder {folder.path}")
    mine = [t for t in tests if (t.board or "") == which and t.test_id]
    check_samples(mine, folder.path / RESULTS_FILE)
    measured = {(t.test_id, m.name): [float(x) for x in m.samples or []] for t in mine for m in t.measurements}
    nodeids = {t.test_id: t.nodeid for t in mine if t.nodeid}
    return Baseline(folder.run_id, which, str(folder.path), _by_node_id_too(measured, nodeids))


def load_baseline(spec: str, *, history: HistoryDB | Path | str | None, board: str,
                  model: str | None = None, runtime: str | None = None) -> Baseline:
    """The baseline named by ``spec``: ``auto``, a run id in the history, or a run folder path.

    ``auto`` is the run accepted (``hil baseline accept RUN``) for this board, model and
    runtime. A folder (or its results.jsonl) is read for ``board`` when it ran several.
    """
    spec = str(spec).strip()
    if not spec:
        raise HistoryError("empty baseline: pass --baseline auto, a run id (`hil history` lists them) "
                           "or a run folder")
    own = history is not None and not isinstance(history, HistoryDB)
    db = HistoryDB(history) if own else history
    try:
        if spec == "auto":
            if db is None:
                raise HistoryError("--baseline auto needs the history DB, but none is in use: pass --history PATH "
                                   "or name a baseline run folder")
            run_id = db.baseline_for(board, model, runtime)
            if run_id is None:
                raise HistoryError(
                    f"no baseline accepted for board {board!r}, model {model or '-'}, runtime {runtime or '-'} in "
                    f"{db.path}: accept one with `hil baseline accept RUN` (`hil history` lists runs)")
            return _from_history(db, run_id, board)
        if db is not None and db.has_run(spec):
            return _from_history(db, spec, board)
        path = Path(spec)
        if path.exists():
            try:
                return _from_folder(path, board)
            except RunFolderError as e:
                raise HistoryError(f"baseline {spec}: {e}; pass a run folder, its {RESULTS_FILE}, or a run id") from e
        where = f"a run in the history {db.path}" if db is not None else "a run in the history (none in use)"
        raise HistoryError(f"baseline {spec!r} is neither {where} nor an existing run folder: list runs with "
                           f"`hil history`, or pass a run folder path")
    finally:
        if own:
            db.close()
