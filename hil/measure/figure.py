"""Measurements: a named figure with its unit, raw samples, limit verdict and baseline comparison.

Modelled on OpenHTF's measurements: a test declares what it measured and against what,
``measure("decode_tokens_per_s", samples, "tok/s").within(limits)``, and the verdict
(pass, marginal, fail) comes from the declared limit, never from an ad hoc assert. The
samples are kept, so a later run can be compared with this one statistically
(``hil.measure.compare``), and so the report can plot every repetition.

Pure code: ``hil.suite.recorder`` collects measurements per test and writes them to the
run folder; ``fixtures/results.py`` fails the test on a failed one.
"""

from __future__ import annotations

import math
import statistics

import attr

PASS, MARGINAL, FAIL, UNCHECKED = "pass", "marginal", "fail", "unchecked"
NOT_MEASURED = "not measured"  # declared by its test, which ended before measuring it
# which direction is better, by unit, when the limit does not say (a lower bound says "higher")
_HIGHER_UNITS = {"tok/s", "MiB/s", "%", "FPS"}
_LOWER_UNITS = {"ms", "s", "MiB", "°C", "attempts"}


def better_direction(unit: str, limit=None) -> str | None:
    """``"higher"``, ``"lower"`` or None: which way this figure improves."""
    if limit is not None and getattr(limit, "better", None):
        return limit.better
    if limit is not None and (limit.min is None) != (limit.max is None):
        return "higher" if limit.min is not None else "lower"
    if unit in _HIGHER_UNITS:
        return "higher"
    if unit in _LOWER_UNITS:
        return "lower"
    return None


@attr.s(eq=False)
class Measurement:
    """One figure of one test: raw samples and what they were checked against."""

    name = attr.ib()
    samples = attr.ib(converter=lambda xs: [float(x) for x in xs])
    unit = attr.ib(default="")
    limit = attr.ib(default=None)  # hil.measure.limits.Limit or None
    verdict = attr.ib(default=UNCHECKED)
    violation = attr.ib(default=None)  # str: why the limit check failed or is marginal
    rejected = attr.ib(factory=list)  # str per sample left out (output wrong, run failed)
    comparison = attr.ib(default=None)  # hil.measure.compare.Comparison, set when a baseline was given
    better = attr.ib(default=None)  # "higher" / "lower" / None
    anomalies = attr.ib(factory=list)  # str per reading left out as impossible (a core above 100 %); no verdict
    _listeners = attr.ib(factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.better is None:
            self.better = better_direction(self.unit)
        bad = [x for x in self.samples if not math.isfinite(x)]
        if bad:
            raise ValueError(f"{self.name}: samples must be finite numbers, got {bad}")

    # summary -----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def iqr(self) -> float | None:
        """Interquartile range: the spread of the middle half of the samples."""
        if len(self.samples) < 2:
            return 0.0 if self.samples else None
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q3 - q1

    @property
    def spread_pct(self) -> float | None:
        """IQR relative to the median, in percent."""
        if not self.samples or not self.median:
            return None
        return 100.0 * self.iqr / abs(self.median)

    # checks ------------------------------------------------------------------------------
    def within(self, limits=None) -> "Measurement":
        """Check the median against ``limits`` (a Limit, or a dict of them by figure name).

        With no samples the figure fails: a figure the board did not report cannot pass.
        """
        limit = limits.get(self.name) if isinstance(limits, dict) else limits
        if limit is not None and limit.name != self.name:
            limit = attr.evolve(limit, name=self.name)  # one limit for several figures (per core, zone)
        self.limit = limit
        if limit is not None:
            self.better = better_direction(self.unit or limit.unit, limit)
            self.unit = self.unit or limit.unit
        if not self.samples:
            self.verdict = FAIL
            why = "; ".join(dict.fromkeys(self.rejected + self.anomalies)) or "not reported by the board"
            self.violation = f"{self.name}: no accepted sample ({why})"
        elif limit is None:
            self.verdict = UNCHECKED
        else:
            self.verdict, self.violation = limit.verdict(self.median)
        self._notify()
        return self

    def compared(self, comparison) -> "Measurement":
        self.comparison = comparison
        self._notify()
        return self

    def listen(self, callback) -> None:
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback(self)

    @property
    def regressed(self) -> bool:
        return self.comparison is not None and self.comparison.verdict == "regression" and self.comparison.gating

    @property
    def failures(self) -> list[str]:
        """Why this measurement fails its test: its limit, and a regression past tolerance."""
        out = []
        if self.verdict == FAIL:
            out.append(self.violation or f"{self.name} failed its limit")
        if self.regressed:
            out.append(self.comparison.describe(self.name, self.unit))
        return out

    def describe(self) -> str:
        if not self.samples:
            return f"{self.name}: no sample"
        text = f"{self.name} = {self.median:g} {self.unit}".rstrip()
        if self.n > 1:
            text += f" (median of {self.n}, IQR {self.iqr:.3g})"
        return text

    # serialisation (the run folder's record of a measurement) ---------------------------
    def to_dict(self) -> dict:
        limit = None
        if self.limit is not None:
            limit = {k: getattr(self.limit, k, None) for k in
                     ("min", "max", "marginal_min", "marginal_max", "published", "tolerance_pct", "source")}
            limit["text"] = self.limit.describe()
        return {
            "name": self.name, "unit": self.unit, "samples": self.samples, "n": self.n,
            "median": self.median, "iqr": self.iqr, "min": min(self.samples) if self.samples else None,
            "max": max(self.samples) if self.samples else None, "spread_pct": self.spread_pct,
            "better": self.better, "verdict": self.verdict, "violation": self.violation,
            "rejected": list(self.rejected), "anomalies": list(self.anomalies), "limit": limit,
            "comparison": self.comparison.to_dict() if self.comparison is not None else None,
        }
