"""The qualification report: one self-contained HTML file built from a run's result folder.

Everything the report shows comes from the run folder (``hil.measure.runfolder``) and, for the
trend charts, from the history database; nothing is kept in memory between the run and
the report, so ``hil report RUN_DIR`` can rebuild it at any time, also for a run that
died (the report then covers the tests that finished and says the run is incomplete).
The file has no external references (CSS inline, charts inline SVG), so it can be mailed,
archived and opened on a phone or printed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
import shlex
from pathlib import Path

import attr
import jinja2
from markupsafe import Markup, escape

from hil.kit import golden
from hil.measure.figure import NOT_MEASURED, UNCHECKED
from hil.measure.records import FigureRecord, LabFaultRecord, TestRecord
from hil.measure.report import plots
from hil.measure.report.plots import name_of
from hil.measure.runfolder import REPORT_FILE, RunFolder, now_iso

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
PASS, MARGINAL, FAIL, INCOMPLETE = "PASS", "MARGINAL", "FAIL", "INCOMPLETE"
LAB_FAULT = "LAB-FAULT"  # the board failed its health check and was left out: the lab's problem, not the image's
FAILED_OUTCOMES = ("failed", "error")
# a console log longer than this keeps only its end (where the failure is) in the report
MAX_LOG_CHARS = 200_000
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ReportError(ValueError):
    """The report cannot be built as asked (e.g. a history database that is not there)."""


# public API -----------------------------------------------------------------------------
def build(run_dir, *, history=None, out=None) -> Path:
    """Render the report of the run in ``run_dir`` to ``out`` (default ``<run_dir>/report.html``).

    ``history`` is an object with ``trend(name, board=, model=, runtime=, limit=)`` (e.g.
    ``hil.measure.history.HistoryDB``), the path of a history database, or None for no trend charts.
    Raises ``hil.measure.runfolder.RunFolderError`` when ``run_dir`` is not a run folder.
    """
    folder = RunFolder.open(run_dir)
    db, close = open_history(history)
    try:
        text = render(folder, history=db)
    finally:
        if close is not None:
            close()
    path = Path(out) if out is not None else folder.path / REPORT_FILE
    _write_atomic(path, text)
    return path


def render(folder: RunFolder, *, history=None) -> str:
    """The report of ``folder`` as HTML text."""
    return _environment().get_template(TEMPLATE).render(**context(folder, history=history))


def open_history(history):
    """``(trend source, close function or None)`` for what ``build`` accepts as ``history``."""
    if history is None or hasattr(history, "trend"):
        return history, None
    path = Path(history)
    if not path.is_file():
        raise ReportError(f"no history database at {path}: give the SQLite file a run wrote "
                          "(run.json names it), or leave the history out")
    try:
        from hil.measure.history import HistoryDB, HistoryError
    except ModuleNotFoundError as e:
        if e.name not in ("hil.measure.history",):
            raise
        raise ReportError(f"cannot read the history database {path}: this installation has no "
                          "hil.measure.history module; build the report without history") from e
    try:
        db = HistoryDB(path)
    except HistoryError as e:
        raise ReportError(f"cannot read the history database: {e}") from e
    return db, getattr(db, "close", None)


# the data the template shows --------------------------------------------------------------
@attr.s
class Board:
    name = attr.ib()
    tests = attr.ib(factory=list)
    provenance = attr.ib(factory=dict)
    verdict = attr.ib(default=PASS)
    reasons = attr.ib(factory=list)
    counts = attr.ib(factory=dict)
    figures = attr.ib(factory=list)
    test_rows = attr.ib(factory=list)
    provenance_rows = attr.ib(factory=list)
    no_golden = attr.ib(factory=list)  # hil.kit.golden.NotRun: golden checks with nothing to compare with

    @property
    def label(self) -> str:
        return self.name or "(no board)"


def board_verdict(tests: list[TestRecord], *, interrupted: bool) -> tuple[str, list[str]]:
    """A board's verdict and the reasons for it.

    FAIL: a test failed or erred, a figure failed its limit or regressed past tolerance
    (a gating regression); MARGINAL: a figure is in the marginal band; INCOMPLETE (over
    all of these) when the run was interrupted or no test finished on the board. A figure
    its test never reached (not measured) does not decide the verdict: the test's outcome does.
    """
    fails, marginals = [], []
    for test in tests:
        failed = test.outcome in FAILED_OUTCOMES
        if failed:  # its message names the figure that failed it, if one did
            fails.append(f"{name_of(test)} {test.outcome}: {_first_line(test.message) or 'no message'}")
        for m in test.measurements:
            comparison = m.comparison or {}
            if m.verdict == "fail" and not failed:
                fails.append(m.violation or f"{m.name} failed its limit")
            if comparison.get("verdict") == "regression" and comparison.get("gating") and not failed:
                fails.append(f"{m.name} regressed {_signed_pct(comparison.get('change_pct'))} from the "
                             f"baseline median {plots.number(comparison.get('baseline_median'))} {m.unit or ''}"
                             .rstrip())
            if m.verdict == "marginal":
                marginals.append(m.violation or f"{m.name} is marginal")
    reasons = list(dict.fromkeys(fails + marginals))
    if interrupted:
        return INCOMPLETE, ["the run was interrupted: only the tests that finished are reported"] + reasons
    if not tests:
        return INCOMPLETE, ["no test finished on this board"]
    if fails:
        return FAIL, reasons
    if marginals:
        return MARGINAL, reasons
    return PASS, []


def context(folder: RunFolder, *, history=None) -> dict:
    """Everything the template needs, computed here so the template only lays it out."""
    info = folder.info()
    tests = folder.tests()
    provenance = folder.provenance()
    interrupted = not info.get("finished")
    options = info.get("options") or {}

    lab_faults: dict[str, list[str]] = {}
    for fault in folder.records(LabFaultRecord):
        lab_faults.setdefault(fault.board or "", []).append(fault.message or "health check failed")
    names = list(dict.fromkeys([*provenance, *((t.board or "") for t in tests), *lab_faults]))
    boards = [Board(name, tests=[t for t in tests if (t.board or "") == name],
                    provenance=provenance.get(name, {})) for name in names]
    units, limits = {}, {}
    for board in boards:
        board.verdict, board.reasons = board_verdict(board.tests, interrupted=interrupted)
        if board.name in lab_faults:
            board.verdict, board.reasons = LAB_FAULT, [f"lab fault, left out of the run: {m}"
                                                       for m in lab_faults[board.name]] + board.reasons
        outcomes = [t.outcome for t in board.tests]
        board.counts = {k: outcomes.count(k) for k in ("passed", "failed", "error", "skipped")}
        board.figures = [_figure_row(t, m) for t in board.tests for m in t.measurements]
        board.provenance_rows = list(_flatten(board.provenance))
        board.no_golden = golden.not_run(board.tests)
        board.test_rows = [{"test": name_of(t), "outcome": t.outcome or "?",
                            "duration": f"{plots.number(t.duration)} s" if t.duration is not None else "–",
                            "note": t.message if t.outcome == "skipped" else None}
                           for t in board.tests]
        for t in board.tests:
            for m in t.measurements:
                units.setdefault(m.name, m.unit or "")
                limits.setdefault(m.name, []).append(m.limit)

    run_id = info.get("run_id") or folder.path.name
    return {
        "run": {
            "id": run_id,
            "started": _time_text(info.get("started")),
            "finished": _time_text(info.get("finished")),
            "duration": _duration(info.get("started"), info.get("finished")),
            "interrupted": interrupted,
            "exitstatus": info.get("exitstatus"),
            "image": options.get("image") or info.get("image"),
            "model": options.get("model") or info.get("model"),
            "options": [(k, _value_text(v)) for k, v in options.items()],
            "command": shlex.join(str(a) for a in info["argv"]) if info.get("argv") else None,
            "history": info.get("history"),
            "tests": len(tests),
        },
        "boards": boards,
        "failures": [_failure(t) for t in tests if t.outcome in FAILED_OUTCOMES],
        "plots": {
            "decode": plots.decode_plots(tests),
            "vision": plots.vision_plots(tests),
            "series": plots.series_plots(tests),
            "history": plots.history_plots(history, names, run_id=run_id, units=units, limits=limits,
                                           models={b.name: _model(b.provenance, options, info) for b in boards}),
        },
        "generated": _time_text(now_iso()),
        "history_given": history is not None,
    }


def _model(provenance: dict, options: dict, info: dict) -> str | None:
    """The model a board ran, as the history keys it: its provenance, else the run's option."""
    model = provenance.get("model")
    if isinstance(model, dict):
        model = model.get("name")
    return str(model) if model else (options.get("model") or info.get("model"))


def _figure_row(test: TestRecord, m: FigureRecord) -> dict:
    """One row of the figures table; a figure its test never reached has no sample, so
    only its verdict (not measured) and why."""
    unit = m.unit or ""
    comparison = m.comparison or {}
    limit = m.limit or {}
    cmp_verdict = comparison.get("verdict")
    verdict = m.verdict or UNCHECKED
    spread = []
    if m.iqr is not None and m.n > 1:
        spread.append(f"IQR {plots.number(m.iqr)}"
                      + (f" ({plots.number(m.spread_pct, 2)} %)" if m.spread_pct is not None else ""))
    spread.append("no sample" if verdict == NOT_MEASURED and not m.n else f"n = {m.n}")
    return {
        "test": name_of(test),
        "name": m.name or "?",
        "median": _with_unit(m.median, unit),
        "spread": spread,
        "rejected": list(m.rejected or []),
        "anomalies": list(m.anomalies or []),
        "limit": limit.get("text") or "–",
        "verdict": verdict,
        "verdict_class": _css_class("v-", verdict),
        "violation": m.violation,
        "baseline": _with_unit(comparison.get("baseline_median"), unit) if comparison else "–",
        "baseline_run": comparison.get("baseline_run"),
        "change": _signed_pct(comparison.get("change_pct")) if comparison else "–",
        "comparison": cmp_verdict or "–",
        "comparison_class": _css_class("cmp-", cmp_verdict) if cmp_verdict else "",
        "gating": bool(comparison.get("gating")) and cmp_verdict == "regression",
        "p_value": comparison.get("p_value"),
    }


def _failure(test: TestRecord) -> dict:
    console, longrepr = test.console, test.longrepr
    log, source = (console, "console") if console else (longrepr, "failure")
    return {
        "board": test.board or "",
        "test": name_of(test),
        "nodeid": test.nodeid,
        "outcome": test.outcome,
        "message": test.message,
        "log": _clean_log(log) if log else None,
        "log_source": source,
        "longrepr": _clean_log(longrepr) if console and longrepr else None,
    }


# formatting ---------------------------------------------------------------------------------
def _clean_log(text) -> str:
    """A console log as a reader wants it: no terminal escapes or control bytes, its end kept."""
    text = _CONTROL.sub("", _ANSI.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n")))
    if len(text) > MAX_LOG_CHARS:
        left_out = len(text) - MAX_LOG_CHARS
        text = f"[first {left_out} characters left out]\n" + text[-MAX_LOG_CHARS:]
    return text


def _flatten(data, prefix: str = ""):
    """Provenance as (dotted key, text) rows, every key of nested mappings included."""
    if isinstance(data, dict) and (data or not prefix):
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, _value_text(data)


def _value_text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value) if value else "–"
    if isinstance(value, (bool, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _with_unit(value, unit: str) -> str:
    return f"{plots.number(value)} {unit}".rstrip() if value is not None else "–"


def _signed_pct(value) -> str:
    if value is None:
        return "–"
    return f"{float(value):+.1f} %"


def _time_text(value) -> str | None:
    if not value:
        return None
    try:
        return _dt.datetime.fromisoformat(str(value)).isoformat(sep=" ", timespec="seconds")
    except ValueError:
        return str(value)


def _duration(started, finished) -> str | None:
    try:
        seconds = (_dt.datetime.fromisoformat(str(finished)) - _dt.datetime.fromisoformat(str(started))).total_seconds()
    except (TypeError, ValueError):
        return None
    if seconds < 0:
        return None
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min" if hours else f"{m} min {s:02d} s"


def breakable(text) -> Markup:
    """Escaped ``text`` that may wrap after ``::`` and ``/`` (test ids on a phone screen)."""
    return Markup(re.sub(r"(::|/)", r"\1<wbr>", str(escape(text))))


def _first_line(text) -> str:
    return str(text).strip().splitlines()[0] if text and str(text).strip() else ""


def _css_class(prefix: str, word: str) -> str:
    """A verdict as one CSS class: ``not measured`` is ``v-not-measured``."""
    return prefix + re.sub(r"\W+", "-", word)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = plots.number
    env.filters["breakable"] = breakable
    return env


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file, so a reader never opens half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
