"""The records a run writes to ``results.jsonl`` and every reader reads back: one type per concept.

The recorder builds these, the run folder stores their ``to_dict()`` as JSON lines, and the
history, the report and the baseline read them back with ``from_dict``, so writer and
readers cannot drift apart. ``from_dict`` takes what an older or killed run wrote: a key
that is missing gets its default, an unknown key is ignored.
"""

from __future__ import annotations

import attr


def _from_dict(cls, data: dict | None):
    data = data if isinstance(data, dict) else {}
    names = {a.name for a in attr.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@attr.s(frozen=True)
class FigureRecord:
    """One measured figure of one test (``hil.measure.figure.Measurement`` as stored)."""

    name = attr.ib(default="?")
    unit = attr.ib(default="")
    samples = attr.ib(factory=list)
    n = attr.ib(default=None)
    median = attr.ib(default=None)
    iqr = attr.ib(default=None)
    min = attr.ib(default=None)
    max = attr.ib(default=None)
    spread_pct = attr.ib(default=None)
    better = attr.ib(default=None)
    verdict = attr.ib(default="unchecked")
    violation = attr.ib(default=None)
    rejected = attr.ib(factory=list)
    anomalies = attr.ib(factory=list)  # readings left out as impossible (e.g. an NPU core above 100 %)
    limit = attr.ib(default=None)  # dict: min, max, marginal_*, published, tolerance_pct, source, text
    comparison = attr.ib(default=None)  # dict: hil.measure.compare.Comparison.to_dict()

    def __attrs_post_init__(self) -> None:
        if self.n is None:
            object.__setattr__(self, "n", len(self.samples or []))

    from_dict = classmethod(_from_dict)

    def to_dict(self) -> dict:
        return attr.asdict(self, recurse=False)


@attr.s(frozen=True)
class TestRecord:
    """One test on one board, written when its teardown ends."""

    __test__ = False  # not a pytest test class

    nodeid = attr.ib(default="")
    test = attr.ib(default=None)  # the test's id without the board (a farm's fan-out adds @place to nodeid)
    board = attr.ib(default="")
    outcome = attr.ib(default="passed")  # passed / failed / skipped / error
    duration = attr.ib(default=0.0)
    message = attr.ib(default=None)
    longrepr = attr.ib(default=None)
    console = attr.ib(default=None)
    measurements = attr.ib(factory=list, converter=lambda ms: [
        m if isinstance(m, FigureRecord) else FigureRecord.from_dict(m) for m in ms or []])
    series = attr.ib(factory=list)
    properties = attr.ib(factory=dict)
    finished = attr.ib(default=None)

    TYPE = "test"

    @property
    def test_id(self) -> str:
        return self.test or self.nodeid

    from_dict = classmethod(_from_dict)

    def to_dict(self) -> dict:
        out = {"type": self.TYPE, **attr.asdict(self, recurse=False)}
        out["measurements"] = [m.to_dict() for m in self.measurements]
        return out


@attr.s(frozen=True)
class ProvenanceRecord:
    """What a board's figures were measured on; later records for a board add to earlier ones."""

    board = attr.ib(default="")
    data = attr.ib(factory=dict)

    TYPE = "provenance"
    from_dict = classmethod(_from_dict)

    def to_dict(self) -> dict:
        return {"type": self.TYPE, **attr.asdict(self, recurse=False)}


@attr.s(frozen=True)
class LabFaultRecord:
    """A board the run left out because a lab component failed (its health check), not a test failure."""

    board = attr.ib(default="")
    message = attr.ib(default="")
    finished = attr.ib(default=None)

    TYPE = "lab_fault"
    from_dict = classmethod(_from_dict)

    def to_dict(self) -> dict:
        return {"type": self.TYPE, **attr.asdict(self, recurse=False)}

    def as_test(self) -> TestRecord:
        """How the history keeps a lab fault: a test ``lab-health`` in error."""
        return TestRecord(nodeid="lab-health", test="lab-health", board=self.board, outcome="error",
                          message=f"lab fault: {self.message}", finished=self.finished)


RECORD_TYPES = {cls.TYPE: cls for cls in (TestRecord, ProvenanceRecord, LabFaultRecord)}


def from_dict(data: dict):
    """The record a results.jsonl line holds, or None for a line of an unknown type."""
    cls = RECORD_TYPES.get(data.get("type")) if isinstance(data, dict) else None
    return cls.from_dict(data) if cls is not None else None
