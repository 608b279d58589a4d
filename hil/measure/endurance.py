"""Statistics for endurance runs: how often power cycles succeed, how spread a latency is, and
whether memory, temperature or speed drift over a soak, with the uncertainty that says whether a
board failed a limit or a run was too short to tell.

The maths is scipy's (already a dependency) rather than written here:

- ``success_rate``: the Wilson score interval, ``scipy.stats.binomtest(k, n)
  .proportion_ci(method="wilson")``. Wilson rather than the normal ("Wald") interval because a
  good board sits at or near 100 %, where Wald collapses to zero width (200/200 would give
  [1, 1]); Wilson stays inside [0, 1] and gives 200/200 a lower bound of n / (n + z^2) = 0.981.
- ``drift`` / ``leak_mib_per_hour``: least squares (``scipy.stats.linregress``), the slope's
  two-sided 95 % interval as slope +- t(0.975, n - 2) * stderr (``scipy.stats.t.ppf``). A leak is
  "proven" when the interval's low end is above zero, not when the slope is.
- ``percentiles``: ``numpy.percentile``'s default (linear interpolation between order
  statistics, numpy's ``method="linear"``, Hyndman & Fan type 7, what spreadsheets call
  PERCENTILE.INC).

Times are seconds; rates are per hour because a soak lasts hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
HOUR_S = 3600.0


def success_rate(successes: int, trials: int, confidence: float = CONFIDENCE
                 ) -> tuple[float | None, float, float]:
    """``(rate, low, high)`` of ``successes`` out of ``trials`` with the Wilson score interval.
    With no trials nothing is known: ``(None, 0.0, 1.0)``. Raises ValueError for negative
    counts or more successes than trials."""
    if isinstance(successes, bool) or isinstance(trials, bool) or successes < 0 or trials < 0 \
            or successes > trials or int(successes) != successes or int(trials) != trials:
        raise ValueError(f"need whole counts with 0 <= successes <= trials; got {successes}/{trials}")
    if trials == 0:
        return None, 0.0, 1.0
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return successes / trials, float(ci.low), float(ci.high)


class Percentiles(NamedTuple):
    p50: float | None
    p95: float | None
    max: float | None


def percentiles(samples: Sequence[float]) -> Percentiles:
    """Median, 95th percentile (linear interpolation) and maximum of ``samples``; all None for
    no samples. NaN samples are dropped (a failed reading is no latency)."""
    values = np.asarray([s for s in samples if s is not None], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Percentiles(None, None, None)
    p50, p95 = np.percentile(values, [50, 95])
    return Percentiles(float(p50), float(p95), float(values.max()))


class Drift(NamedTuple):
    """A series' linear trend and its start-to-end change."""

    slope_per_hour: float | None  # None with fewer than two distinct times
    low: float | None  # 95 % interval of the slope; None with fewer than three points
    high: float | None
    n: int
    first_mean: float | None  # mean of the first window
    last_mean: float | None  # mean of the last window
    ratio: float | None  # last_mean / first_mean; None when first_mean is 0


def _series(times: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(times) != len(values):
        raise ValueError(f"times and values differ in length ({len(times)} and {len(values)})")
    t, v = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    keep = ~(np.isnan(t) | np.isnan(v))
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order], v[keep][order]


def drift(times: Sequence[float], values: Sequence[float], window: float = 0.1,
          confidence: float = CONFIDENCE) -> Drift:
    """Slope of ``values`` over ``times`` (seconds), per hour, with its two-sided ``confidence``
    interval; and the mean of the last ``window`` of the time span over the mean of the first
    (each window at least one point), which a slope misses when a series steps rather than
    ramps. A constant series has slope 0 and interval [0, 0]."""
    if not 0 < window <= 0.5:
        raise ValueError(f"window is a fraction of the run in (0, 0.5]; got {window}")
    t, v = _series(times, values)
    n = int(t.size)
    if n == 0:
        return Drift(None, None, None, 0, None, None, None)
    span = t[-1] - t[0]
    first = v[t <= t[0] + window * span] if span > 0 else v[:1]
    last = v[t >= t[-1] - window * span] if span > 0 else v[-1:]
    first_mean, last_mean = float(first.mean()), float(last.mean())
    ratio = last_mean / first_mean if first_mean != 0 else None
    if n < 2 or span == 0:
        return Drift(None, None, None, n, first_mean, last_mean, ratio)
    if np.ptp(v) == 0:  # linregress gives a NaN stderr for a flat line; its slope is exactly 0
        return Drift(0.0, *((0.0, 0.0) if n >= 3 else (None, None)), n, first_mean, last_mean, ratio)
    fit = stats.linregress(t, v)
    slope = float(fit.slope) * HOUR_S
    if n < 3:
        return Drift(slope, None, None, n, first_mean, last_mean, ratio)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 2)) * float(fit.stderr) * HOUR_S
    return Drift(slope, slope - half, slope + half, n, first_mean, last_mean, ratio)


def leak_mib_per_hour(times_s: Sequence[float], rss_mib: Sequence[float]
                      ) -> tuple[float | None, float | None, float | None]:
    """``(slope, low, high)``: how fast a resident set grows, MiB per hour, with its 95 %
    interval (``drift``). A leak is shown when ``low > 0``."""
    d = drift(times_s, rss_mib)
    return d.slope_per_hour, d.low, d.high


def first_throttle(times: Sequence[float], freq_hz: Sequence[float], locked_hz: float,
                   tolerance_hz: float = 0.0) -> float | None:
    """The first time the clock read below ``locked_hz - tolerance_hz``, or None if it never
    did. A clock pinned with ``fix_freq_rk3576.sh`` reads back exactly its OPP (rockchip.md §4),
    so the default tolerance is 0; a missing reading (None/NaN) is no drop."""
    if len(times) != len(freq_hz):
        raise ValueError(f"times and freq_hz differ in length ({len(times)} and {len(freq_hz)})")
    floor = locked_hz - tolerance_hz
    dropped = [t for t, f in zip(times, freq_hz) if f is not None and not math.isnan(f) and f < floor]
    return min(dropped) if dropped else None


class CycleSummary(NamedTuple):
    """A run of boot cycles: the success rate with its Wilson interval (fractions), the time to
    a usable board of the successful ones, and the failed cycles' numbers by the stage they
    stopped at."""

    trials: int
    successes: int
    rate: float | None
    low: float
    high: float
    ready: Percentiles
    failures: dict[str, list[int]]

    def describe(self) -> str:
        text = f"{self.successes}/{self.trials} cycles reached a usable board"
        if self.rate is not None:
            text += f" ({100 * self.rate:.1f} %, 95 % interval {100 * self.low:.1f}-{100 * self.high:.1f} %)"
        if self.failures:
            text += "; failed: " + ", ".join(f"{len(ns)} at {stage} (cycle {', '.join(map(str, ns[:10]))}"
                                             f"{', ...' if len(ns) > 10 else ''})"
                                             for stage, ns in self.failures.items())
        return text


def cycle_summary(cycles) -> CycleSummary:
    """From cycles with ``n``, ``ok``, ``stopped_at`` and ``ready_s`` (hil.lab.bootcycle.CycleResult)."""
    cycles = list(cycles)
    ok = sum(1 for c in cycles if c.ok)
    rate, low, high = success_rate(ok, len(cycles))
    failures: dict[str, list[int]] = {}
    for c in cycles:
        if not c.ok:
            failures.setdefault(c.stopped_at or "none", []).append(c.n)
    return CycleSummary(trials=len(cycles), successes=ok, rate=rate, low=low, high=high,
                        ready=percentiles([c.ready_s for c in cycles if c.ok]), failures=failures)
