"""The results of a run: declared figures per test, the run folder and the history, as each test ends.

Tests declare what they measure, in the style of OpenHTF's measurements::

    measure("text_decode_tokens_per_s", samples, "tok/s").within(model_limits)

``TestFigures`` holds one test's measurements: it compares each with the ``--baseline`` run,
turns it into JUnit properties, and, for the figures a test declared up front, records the
ones it never reached as *not measured* (a test that failed first must not make its figures
vanish). ``RunRecorder`` lives in the process that owns the run (the only process, or the
xdist controller) and writes ``<results>/<run id>/results.jsonl`` record by record, each
forced to disk as its test ends, and the SQLite history. It reads test reports as pytest
hands them over (``when``, ``outcome`` flags, ``sections``, ``user_properties`` and the
``hil`` attribute with board, figures and provenance that workers attach), so the same code
serves one board and a farm.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hil.kit import golden
from hil.measure import compare as comparemod
from hil.measure import history as historymod
from hil.measure.figure import NOT_MEASURED, Measurement
from hil.measure.limits import DEFAULT_TOLERANCE_PCT
from hil.measure.records import LabFaultRecord, ProvenanceRecord, TestRecord
from hil.measure.runfolder import RunFolder, now_iso


class Baseline:
    """The ``--baseline`` run, loaded when the first measurement asks for it."""

    def __init__(self, spec: str, suite_config) -> None:
        self.spec = spec
        self.suite = suite_config
        self._loaded = None
        self.error = None

    def load(self):
        if self._loaded is None and self.error is None:
            path = self.suite.history_path
            try:
                self._loaded = historymod.load_baseline(
                    self.spec, history=historymod.HistoryDB(path) if path else None, board=self.suite.board_id,
                    model=self.suite.model.name, runtime=self.suite.runtime.rkllm_runtime)
            except historymod.HistoryError as e:
                self.error = str(e)
        return self._loaded


class TestFigures:
    """``measure(name, samples, unit)`` for one test; ``series(...)`` for time series to plot.

    ``declared``: the figures the test says it produces; those it did not reach are
    recorded as not measured when the test ends (``finish``).
    """

    def __init__(self, nodeid: str, limits: dict, baseline, record_property, declared=()) -> None:
        self.nodeid, self.limits, self.baseline = nodeid, limits, baseline
        self._record = record_property
        self._recorded: dict = {}
        self.declared = list(declared)
        self.measurements: list[Measurement] = []
        self.series_list: list[dict] = []

    def __call__(self, name: str, samples, unit: str = "", *, rejected=(), anomalies=()) -> Measurement:
        if samples is None:
            samples = []
        elif isinstance(samples, (int, float)):
            samples = [samples]
        m = Measurement(name=name, samples=[s for s in samples if s is not None], unit=unit, rejected=list(rejected),
                        anomalies=list(anomalies))
        m.listen(self._checked)
        self.measurements.append(m)
        return m

    def series(self, name: str, unit: str, t, values: dict, x: str | None = None) -> None:
        """Values over ``t``: seconds since the series began, unless ``x`` says what ``t`` counts
        (``"cycle"`` for a boot-cycle test)."""
        entry = {"name": name, "unit": unit, "t": list(t), "values": {k: list(v) for k, v in values.items()}}
        if x:
            entry["x"] = x
        self.series_list.append(entry)

    @property
    def failures(self) -> list[str]:
        return [f for m in self.measurements for f in m.failures]

    def finish(self, why: str | None = None) -> None:
        """Declared figures the test never measured: recorded as such, with why when known."""
        measured = {m.name for m in self.measurements}
        for name in self.declared:
            if name not in measured:
                m = Measurement(name=name, samples=[], verdict=NOT_MEASURED,
                                violation=f"not measured: {why}" if why else "not measured")
                self.measurements.append(m)
                self._properties(m)

    def _checked(self, m: Measurement) -> None:
        """After ``within``: compare with the baseline, then write the JUnit properties."""
        if m.comparison is None and self.baseline is not None and m.samples:
            reference = self.baseline.samples(self.nodeid, m.name)
            if reference:
                tolerance = m.limit.tolerance_pct if m.limit is not None else DEFAULT_TOLERANCE_PCT
                m.comparison = comparemod.compare(reference, m.samples, better=m.better, tolerance_pct=tolerance,
                                                  baseline_run=self.baseline.run_id)
        self._properties(m)

    def _properties(self, m: Measurement) -> None:
        props = {m.name: round(m.median, 4) if m.median is not None else "", f"{m.name}.unit": m.unit,
                 f"{m.name}.n": m.n, f"{m.name}.samples": " ".join(f"{s:g}" for s in m.samples),
                 f"{m.name}.verdict": m.verdict}
        if m.n > 1:
            props[f"{m.name}.iqr"] = round(m.iqr, 4)
        if m.limit is not None:
            props[f"{m.name}.limit"] = m.limit.describe()
        if m.rejected:
            props[f"{m.name}.rejected"] = "; ".join(m.rejected)
        if m.anomalies:
            props[f"{m.name}.anomalies"] = "; ".join(m.anomalies)
        if m.comparison is not None:
            c = m.comparison
            props.update({f"{m.name}.baseline": c.baseline_median, f"{m.name}.baseline_run": c.baseline_run,
                          f"{m.name}.change_pct": round(c.change_pct, 2) if c.change_pct is not None else "",
                          f"{m.name}.comparison": c.verdict})
        for k, v in props.items():
            if self._recorded.get(k) != v:
                self._recorded[k] = v
                self._record(k, v)


class RunRecorder:
    """Writes the run folder and the history from the test reports, in the owning process."""

    def __init__(self, suite_config, argv=None, env_file: str | None = None) -> None:
        self.suite = suite_config
        info = {"argv": list(sys.argv[1:] if argv is None else argv), "options": {
            "env": env_file, "image": suite_config.image.name if suite_config.image else None,
            "model": suite_config.model.name, "repeat": suite_config.repeat, "baseline": suite_config.baseline,
            "limits": list(suite_config.limits_files)}}
        self.history_file = suite_config.history_path
        info["history"] = str(self.history_file.resolve()) if self.history_file else None
        self.folder = RunFolder.create(suite_config.results_dir, **info)
        self.run_id = self.folder.run_id
        self.history = None
        if self.history_file is not None:
            self.history = historymod.HistoryDB(self.history_file)
            self.history.record_run(self.folder.info() | {"run_dir": str(self.folder.path.resolve())})
        self._phases: dict[tuple, dict] = {}
        self._provenance: dict[str, dict] = {}
        self._lab_faults: dict[str, str] = {}
        self._no_golden: list[TestRecord] = []  # golden checks skipped for want of recorded answers

    def provenance(self, board: str, data: dict) -> None:
        known = self._provenance.setdefault(board, {})
        new = {k: v for k, v in data.items() if known.get(k) != v}
        if not new:
            return
        known.update(new)
        self.folder.append(ProvenanceRecord(board=board, data=new).to_dict())
        if self.history is not None:
            self.history.record_provenance(self.run_id, board, new)

    def lab_fault(self, board: str, message: str) -> None:
        if self._lab_faults.get(board) == message:
            return
        self._lab_faults[board] = message
        fault = LabFaultRecord(board=board, message=message, finished=now_iso())
        self.folder.append(fault.to_dict())
        if self.history is not None:
            self.history.record_test(self.run_id, fault.as_test())

    def add_report(self, report) -> None:
        """One finished phase of a test (an xdist controller sees its workers' reports here)."""
        hil = getattr(report, "hil", None) or {}
        board = hil.get("board") or self.suite.board_id
        if hil.get("provenance"):
            self.provenance(board, hil["provenance"])
        if hil.get("lab_fault"):
            self.lab_fault(board, hil["lab_fault"])
        key = (hil.get("test") or report.nodeid, board)
        phases = self._phases.setdefault(key, {})
        phases[report.when] = report
        if hil.get("measurements") is not None:
            phases["hil"] = hil
        if report.when == "teardown":
            self._finish(key, board)

    def _finish(self, key, board: str) -> None:
        phases = self._phases.pop(key)
        setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
        hil = phases.get("hil") or {}
        outcome, culprit = "passed", None
        for rep, bad in ((setup, "error"), (call, "failed"), (teardown, "error")):
            if rep is None:
                continue
            if rep.failed:
                outcome, culprit = bad, rep
                break
            if rep.skipped and outcome == "passed":
                outcome, culprit = "skipped", rep
        figures = hil.get("measurements") or []
        record = TestRecord(
            nodeid=(call or setup or teardown).nodeid, test=key[0], board=board, outcome=outcome,
            duration=round(sum(r.duration for r in (setup, call, teardown) if r), 3),
            message=report_message(culprit) if culprit else None,
            longrepr=str(culprit.longrepr) if culprit is not None and culprit.failed else None,
            console=_console(phases) if outcome in ("failed", "error") else None,
            measurements=figures, series=hil.get("series") or [],
            properties={k: v for k, v in (teardown or call or setup).user_properties
                        if not k.startswith(tuple(m["name"] for m in figures))},
            finished=now_iso())
        self.folder.append(record.to_dict())
        if self.history is not None:
            self.history.record_test(self.run_id, record)
        if golden.not_run([record]):
            self._no_golden.append(record)

    def golden_not_run(self) -> list[golden.NotRun]:
        """The golden checks that did not run (no answers recorded), per board, model and runtime: for
        the summary, so that a model without golden answers never reads as passed."""
        return golden.not_run(self._no_golden)

    def finish(self, exitstatus: int) -> Path | None:
        """The run is over: its end in run.json and the history, and its report built."""
        self.folder.update_info(finished=now_iso(), exitstatus=int(exitstatus))
        if self.history is not None:
            self.history.finish_run(self.run_id, self.folder.info()["finished"], int(exitstatus))
        from hil.measure.report import html  # matplotlib: only when a report is built

        return html.build(self.folder.path, history=self.history)


def report_message(rep) -> str:
    """One line of why a test phase failed or skipped."""
    if rep.skipped and isinstance(rep.longrepr, tuple):
        return rep.longrepr[2]
    crash = getattr(rep.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    return str(rep.longrepr)[-2000:]


def _console(phases: dict) -> str | None:
    texts = [content for rep in phases.values() if hasattr(rep, "sections")
             for title, content in rep.sections if "board console" in title]
    return "\n".join(texts) or None
