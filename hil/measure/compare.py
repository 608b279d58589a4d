"""Statistical comparison of a figure's samples with a baseline run's samples.

A single median against a single median cannot tell a regression from noise: boards,
thermals and the page cache make every repetition differ a little. So both runs keep
their raw samples and the comparison asks two questions:

* is the difference *significant*? One-sided Mann-Whitney U tests, one in the "worse"
  direction and one in the "better" direction (exact for small samples; with ties, an
  exact permutation test), because run-to-run noise is not normal and n is small;
* is it *large enough to matter*? The Hodges-Lehmann shift (median of all pairwise
  differences) relative to the baseline median, in percent, against ``tolerance_pct``.

Only a change that is both counts: ``regression`` gates the test (``gating``), an
``improvement`` is reported, anything else is ``within noise``. With fewer than
``MIN_SAMPLES`` samples on either side, or a figure with no better direction, the
result is ``not comparable`` and never gates.

With 5 samples per side the smallest one-sided exact p-value is 1/252 = 0.004, so the
default ``alpha`` of 0.05 can be reached; ``selftest/unit/test_compare.py`` checks the
detection rate and the false-alarm rate by simulation.
"""

from __future__ import annotations

import math
import statistics

import attr
import numpy as np
from scipy import stats

REGRESSION, IMPROVEMENT, NOISE, NOT_COMPARABLE = "regression", "improvement", "within noise", "not comparable"
VERDICTS = (REGRESSION, IMPROVEMENT, NOISE, NOT_COMPARABLE)
MIN_SAMPLES = 3
DEFAULT_ALPHA = 0.05
DEFAULT_TOLERANCE_PCT = 3.0
# above this many arrangements an exact test costs too much; the normal approximation is good there
_EXACT_LIMIT = 200_000


@attr.s(frozen=True)
class Comparison:
    """How one figure's samples compare with the baseline's; see the module docstring."""

    verdict = attr.ib(validator=attr.validators.in_(VERDICTS))
    change_pct = attr.ib(default=None)  # + = the value grew (HL shift, or medians when not comparable)
    p_value = attr.ib(default=None)  # one-sided, in the direction of the verdict (or the likelier one)
    median = attr.ib(default=None)
    baseline_median = attr.ib(default=None)
    n = attr.ib(default=0)
    baseline_n = attr.ib(default=0)
    tolerance_pct = attr.ib(default=DEFAULT_TOLERANCE_PCT)
    baseline_run = attr.ib(default=None)
    gating = attr.ib(default=False)
    better = attr.ib(default=None)
    alpha = attr.ib(default=DEFAULT_ALPHA)
    p_worse = attr.ib(default=None)
    p_better = attr.ib(default=None)
    reason = attr.ib(default=None)  # why not comparable

    def to_dict(self) -> dict:
        return attr.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Comparison":
        """Read back ``to_dict()`` output; unknown keys (from a newer version) are ignored."""
        names = {a.name for a in attr.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def describe(self, name: str, unit: str = "") -> str:
        """One line naming both figures, the size of the change and its significance."""
        ours = _figure(self.median, unit, self.n)
        theirs = _figure(self.baseline_median, unit, self.baseline_n)
        run = f", run {self.baseline_run}" if self.baseline_run else ""
        figures = f"{ours}, vs baseline {theirs}{run}"
        size = abs(self.change_pct) if self.change_pct is not None else None
        if self.verdict == NOT_COMPARABLE:
            change = f", {self.change_pct:+.1f} %" if self.change_pct is not None else ""
            return f"{name} not comparable with the baseline: {self.reason} ({figures}{change})"
        stats_text = f"p={_p(self.p_value)}, tolerance {self.tolerance_pct:g} %"
        if self.verdict == REGRESSION:
            return f"{name} regressed {size:.1f} % ({figures}; {stats_text})"
        if self.verdict == IMPROVEMENT:
            return f"{name} improved {size:.1f} % ({figures}; {stats_text})"
        return f"{name} within noise, {self.change_pct:+.1f} % ({figures}; {stats_text})"


def format_number(x: float | None) -> str:
    """Four significant digits, keeping trailing zeros (13.80, 0.1234, 1234)."""
    if x is None:
        return "?"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, 3 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def _figure(median: float | None, unit: str, n: int) -> str:
    value = f"{format_number(median)} {unit}".rstrip()
    return f"{value}, median of {n}" if n != 1 else f"{value}, 1 sample"


def _p(p: float | None) -> str:
    return "?" if p is None else f"{p:.2g}"


def _pct(delta: float, base: float | None) -> float | None:
    if base is None or base == 0:
        return None
    return 100.0 * delta / abs(base)


def _method(x: list[float], y: list[float]):
    """Exact U distribution without ties; an exact permutation test with ties; else asymptotic."""
    arrangements = math.comb(len(x) + len(y), len(x))
    if arrangements > _EXACT_LIMIT:
        return "asymptotic"
    if len(set(x) | set(y)) == len(x) + len(y):
        return "exact"
    return stats.PermutationMethod(n_resamples=arrangements)


def _one_sided(x: list[float], y: list[float], alternative: str, method) -> float:
    p = float(stats.mannwhitneyu(x, y, alternative=alternative, method=method).pvalue)
    return 1.0 if math.isnan(p) else min(1.0, p)


def hodges_lehmann(samples, baseline) -> float:
    """Median of all pairwise differences ``sample - baseline``: a robust size of the shift."""
    diffs = np.subtract.outer(np.asarray(samples, dtype=float), np.asarray(baseline, dtype=float))
    return float(np.median(diffs))


def compare(baseline, samples, *, better: str | None, tolerance_pct: float = DEFAULT_TOLERANCE_PCT,
            alpha: float = DEFAULT_ALPHA, baseline_run: str | None = None) -> Comparison:
    """Compare ``samples`` (this run) with ``baseline`` (the baseline run's samples).

    ``better`` is ``"higher"`` or ``"lower"``: which way the figure improves.
    """
    if better not in ("higher", "lower", None):
        raise ValueError(f"better must be 'higher', 'lower' or None, got {better!r}")
    base = [float(v) for v in (baseline if baseline is not None else [])]
    ours = [float(v) for v in (samples if samples is not None else [])]
    bad = [v for v in base + ours if not math.isfinite(v)]
    if bad:
        raise ValueError(f"samples must be finite numbers, got {bad}")
    med = statistics.median(ours) if ours else None
    base_med = statistics.median(base) if base else None
    common = dict(median=med, baseline_median=base_med, n=len(ours), baseline_n=len(base),
                  tolerance_pct=tolerance_pct, baseline_run=baseline_run, better=better, alpha=alpha)

    reason = None
    if len(ours) < MIN_SAMPLES or len(base) < MIN_SAMPLES:
        reason = (f"needs at least {MIN_SAMPLES} samples on each side, has {len(ours)} here and "
                  f"{len(base)} in the baseline (raise --repeat)")
    elif better is None:
        reason = "the figure has no better direction (set 'better' in its limit)"
    elif base_med == 0:
        reason = "the baseline median is 0, so a change has no relative size"
    if reason:
        change = _pct(med - base_med, base_med) if med is not None and base_med is not None else None
        return Comparison(NOT_COMPARABLE, change_pct=change, reason=reason, **common)

    method = _method(ours, base)
    # "less" = our samples tend to be smaller than the baseline's
    p_less = _one_sided(ours, base, "less", method)
    p_greater = _one_sided(ours, base, "greater", method)
    p_worse, p_better = (p_less, p_greater) if better == "higher" else (p_greater, p_less)
    change = _pct(hodges_lehmann(ours, base), base_med)
    worse_by = -change if better == "higher" else change  # > 0: the figure got worse

    if p_worse < alpha and worse_by > tolerance_pct:
        verdict, p = REGRESSION, p_worse
    elif p_better < alpha and -worse_by > tolerance_pct:
        verdict, p = IMPROVEMENT, p_better
    else:
        verdict, p = NOISE, min(p_worse, p_better)
    return Comparison(verdict, change_pct=change, p_value=p, p_worse=p_worse, p_better=p_better,
                      gating=verdict == REGRESSION, **common)
