"""hil.measure.endurance against numbers checked by hand or published: Wilson intervals from
Newcombe's table and from the closed form (computed here with the standard library, not scipy),
percentiles and a regression slope's interval worked out on paper, and the edge cases a soak
produces (no trials, all failures, one sample, a flat series)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from hil.measure import endurance as en

Z = NormalDist().inv_cdf(0.975)  # 1.959964, independent of scipy


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval in closed form (Wilson 1927; Newcombe 1998 method 3)."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


# Newcombe R.G. (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857-872, Table II, method 3 (score, no continuity
# correction), to four decimals.
NEWCOMBE = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)),
            ((1, 29), (0.0061, 0.1718))]


@pytest.mark.parametrize(("counts", "interval"), NEWCOMBE)
def test_wilson_against_newcombe_table(counts, interval):
    rate, low, high = en.success_rate(*counts)
    assert rate == counts[0] / counts[1]
    assert (round(low, 4), round(high, 4)) == interval


@pytest.mark.parametrize("k", [198, 200, 199, 100, 1])
def test_wilson_against_closed_form(k):
    rate, low, high = en.success_rate(k, 200)
    assert (low, high) == pytest.approx(wilson(k, 200), abs=1e-12)


def test_wilson_at_the_edges():
    # 200/200: the upper end is 1 and the lower n / (n + z^2) = 0.98115; Wald would give [1, 1]
    rate, low, high = en.success_rate(200, 200)
    assert rate == 1.0 and high == 1.0
    assert low == pytest.approx(200 / (200 + Z * Z)) and low == pytest.approx(0.981155, abs=1e-6)
    # 198/200 power cycles: 99 % with [96.43 %, 99.73 %]
    assert en.success_rate(198, 200) == pytest.approx((0.99, 0.964278, 0.997253), abs=1e-6)
    # all failures: 0 with an upper end of z^2 / (n + z^2)
    assert en.success_rate(0, 50) == pytest.approx((0.0, 0.0, Z * Z / (50 + Z * Z)))
    assert en.success_rate(0, 0) == (None, 0.0, 1.0)  # no trials, nothing known


@pytest.mark.parametrize("bad", [(-1, 5), (6, 5), (1, -1), (1.5, 4), (True, 2)])
def test_wilson_rejects_impossible_counts(bad):
    with pytest.raises(ValueError):
        en.success_rate(*bad)


def test_percentiles():
    # 1..100: p50 halfway between 50 and 51; p95 at rank 0.95 * 99 = 94.05 -> 95 + 0.05 * (96 - 95)
    assert en.percentiles(range(1, 101)) == (50.5, pytest.approx(95.05), 100.0)
    # five boot times (s), sorted 11.8 12.0 12.1 12.4 19.6: p95 at rank 0.95 * 4 = 3.8
    got = en.percentiles([12.1, 11.8, 19.6, 12.4, 12.0])
    assert got.p50 == 12.1 and got.p95 == pytest.approx(12.4 + 0.8 * (19.6 - 12.4)) and got.max == 19.6
    assert en.percentiles([7.5]) == (7.5, 7.5, 7.5)
    assert en.percentiles([]) == (None, None, None)
    assert en.percentiles([3.0, float("nan"), None, 5.0]) == (4.0, pytest.approx(4.9), 5.0)


H = en.HOUR_S


def test_drift_textbook_regression():
    # x (h) = 1..5, y = 2 4 5 4 5: slope 0.6, SSE 2.4, s^2 = 0.8, Sxx = 10, se = sqrt(0.08);
    # t(0.975, 3) = 3.182446 from the t table: 0.6 +- 0.900145
    d = en.drift([h * H for h in (1, 2, 3, 4, 5)], [2, 4, 5, 4, 5])
    assert d.slope_per_hour == pytest.approx(0.6)
    half = 3.182446 * math.sqrt(0.08)
    assert (d.low, d.high) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-5)
    assert d.n == 5
    # the windows are the first and last 10 % of the 4 h span: one point each
    assert (d.first_mean, d.last_mean, d.ratio) == (2.0, 5.0, 2.5)


def test_drift_exact_line_and_step():
    d = en.drift([0, H, 2 * H, 3 * H], [100, 110, 120, 130])
    assert (d.slope_per_hour, d.low, d.high) == pytest.approx((10.0, 10.0, 10.0))
    # a step halfway (a throttle, a cache flush): the ratio says 2x, last window / first window
    step = en.drift([h * H for h in range(10)], [10] * 5 + [20] * 5, window=0.2)
    assert (step.first_mean, step.last_mean, step.ratio) == (10.0, 20.0, 2.0)


def test_drift_edge_cases():
    assert en.drift([], []) == (None, None, None, 0, None, None, None)
    assert en.drift([5.0], [3.0]) == (None, None, None, 1, 3.0, 3.0, 1.0)
    two = en.drift([0, H], [1.0, 3.0])
    assert two.slope_per_hour == pytest.approx(2.0) and two.low is None and two.high is None
    flat = en.drift([0, H, 2 * H, 3 * H], [42.0] * 4)  # linregress alone gives a NaN stderr here
    assert (flat.slope_per_hour, flat.low, flat.high, flat.ratio) == (0.0, 0.0, 0.0, 1.0)
    same_time = en.drift([60.0, 60.0, 60.0], [1.0, 2.0, 3.0])
    assert same_time.slope_per_hour is None and same_time.n == 3
    zero_start = en.drift([0, H, 2 * H], [0.0, 1.0, 2.0])
    assert zero_start.ratio is None and zero_start.slope_per_hour == pytest.approx(1.0)
    unsorted = en.drift([2 * H, 0, H], [120, 100, 110])
    assert unsorted.slope_per_hour == pytest.approx(10.0) and unsorted.first_mean == 100.0
    with pytest.raises(ValueError):
        en.drift([0, 1], [1])
    with pytest.raises(ValueError):
        en.drift([0, 1], [1, 2], window=0.7)


def test_leak_mib_per_hour():
    # 4 MiB/h on top of a 512 MiB resident set, sampled every 10 min for 2 h
    times = [i * 600.0 for i in range(13)]
    slope, low, high = en.leak_mib_per_hour(times, [512 + 4 * t / H for t in times])
    assert (slope, low, high) == pytest.approx((4.0, 4.0, 4.0))
    # the textbook series read as MiB: a slope of 0.6 MiB/h whose interval includes 0, no leak shown
    slope, low, high = en.leak_mib_per_hour([h * H for h in (1, 2, 3, 4, 5)], [2, 4, 5, 4, 5])
    assert slope == pytest.approx(0.6) and low < 0 < high
    assert en.leak_mib_per_hour([0, H, 2 * H], [300, 300, 300]) == (0.0, 0.0, 0.0)
    assert en.leak_mib_per_hour([0], [300]) == (None, None, None)


def test_first_throttle():
    # fix_freq_rk3576.sh pins the A72 policy at 2304000 kHz (rockchip.md §4)
    locked = 2_304_000_000
    times = [0, 10, 20, 30, 40]
    assert en.first_throttle(times, [locked, locked, 2_208_000_000, locked, 2_016_000_000], locked) == 20
    assert en.first_throttle(times, [locked] * 5, locked) is None
    assert en.first_throttle([], [], locked) is None
    assert en.first_throttle(times, [locked, float("nan"), None, locked, locked], locked) is None
    assert en.first_throttle(times, [locked - 1000] * 5, locked, tolerance_hz=5000) is None
    assert en.first_throttle([40, 30, 20], [1e9, 1e9, 2.4e9], locked) == 30  # the earliest, whatever the order
    with pytest.raises(ValueError):
        en.first_throttle([0, 1], [locked], locked)
