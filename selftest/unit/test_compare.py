"""The regression gate: statistical comparison of samples with a baseline's samples.

The simulations check the property the gate exists for: with realistic run-to-run noise
(uniform +-2 % per sample) and 5 samples per side, a 5 % slowdown is caught nearly always
and an unchanged board almost never fails. Seeded, so the counts are reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest

from hil.measure.compare import (IMPROVEMENT, NOISE, NOT_COMPARABLE, REGRESSION, Comparison, compare,
                         format_number, hodges_lehmann)
from hil.measure.figure import Measurement

TRIALS = 1000
NOISE_PCT = 2.0
N = 5


def _runs(rng, base: float, factor: float, trials: int = TRIALS):
    """``trials`` pairs of (baseline samples, samples scaled by ``factor``), each with +-2 % noise."""
    def noisy(value):
        return value * (1 + rng.uniform(-NOISE_PCT / 100, NOISE_PCT / 100, N))
    return [(noisy(base), noisy(base * factor)) for _ in range(trials)]


def _rate(pairs, better: str, verdict: str) -> float:
    return sum(compare(b, s, better=better).verdict == verdict for b, s in pairs) / len(pairs)


# power and false alarms --------------------------------------------------------------------
def test_detects_5pct_decode_slowdown_in_99pct_of_trials():
    rng = np.random.default_rng(20261126)
    rate = _rate(_runs(rng, 14.57, 0.95), "higher", REGRESSION)
    assert rate >= 0.99, f"5 % slowdown flagged in only {rate:.1%} of {TRIALS} trials"


def test_no_change_gives_under_2pct_false_alarms():
    rng = np.random.default_rng(11)
    pairs = _runs(rng, 14.57, 1.0)
    regressions = _rate(pairs, "higher", REGRESSION)
    improvements = _rate(pairs, "higher", IMPROVEMENT)
    assert regressions < 0.02, f"{regressions:.1%} false regressions with no change"
    assert improvements < 0.02, f"{improvements:.1%} false improvements with no change"


def test_detects_slowdown_when_noise_is_on_time_per_token():
    """The twin (like the board) jitters the time per token; tok/s is its inverse."""
    rng = np.random.default_rng(5)
    pairs = [(14.57 / (1 + rng.uniform(-0.02, 0.02, N)), 14.57 * 0.95 / (1 + rng.uniform(-0.02, 0.02, N)))
             for _ in range(TRIALS)]
    assert _rate(pairs, "higher", REGRESSION) >= 0.99


def test_lower_is_better_figure_5pct_slower_is_a_regression():
    # a 5 % longer boot: the same test mirrored; the expected rate is about 99.2 %, so the
    # bound leaves room for the seed
    rng = np.random.default_rng(3)
    pairs = _runs(rng, 38.0, 1.05)
    assert _rate(pairs, "lower", REGRESSION) >= 0.98
    assert _rate(_runs(rng, 38.0, 1.0), "lower", REGRESSION) < 0.02


def test_5pct_speedup_is_an_improvement_and_never_gates():
    rng = np.random.default_rng(9)
    pairs = _runs(rng, 14.57, 1.05)
    results = [compare(b, s, better="higher") for b, s in pairs]
    assert sum(r.verdict == IMPROVEMENT for r in results) / TRIALS >= 0.99
    assert not any(r.gating for r in results)


def test_significant_change_below_tolerance_does_not_gate():
    """A 1 % drop with almost no noise is real, but smaller than the 3 % tolerance."""
    base = [100.0, 100.05, 99.95, 100.02, 99.98]
    now = [x * 0.99 for x in base]
    result = compare(base, now, better="higher")
    assert result.p_worse < 0.05
    assert result.verdict == NOISE and not result.gating
    assert result.change_pct == pytest.approx(-1.0, abs=0.05)


def test_tolerance_is_honoured():
    base = [100.0, 100.05, 99.95, 100.02, 99.98]
    now = [x * 0.95 for x in base]
    assert compare(base, now, better="higher", tolerance_pct=3.0).verdict == REGRESSION
    assert compare(base, now, better="higher", tolerance_pct=8.0).verdict == NOISE


# exact values ----------------------------------------------------------------------------
def test_separated_samples_give_the_exact_smallest_p():
    result = compare([10, 11, 12, 13, 14], [20, 21, 22, 23, 24], better="lower")
    assert result.verdict == REGRESSION and result.gating
    assert result.p_value == pytest.approx(1 / 252)  # one arrangement of C(10, 5)
    assert result.change_pct == pytest.approx(100 * 10 / 12)
    assert (result.median, result.baseline_median, result.n, result.baseline_n) == (22, 12, 5, 5)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    assert hodges_lehmann([3, 4, 100], [1, 2, 3]) == 2.0  # diffs 2,1,0,3,2,1,99,98,97
    assert hodges_lehmann([1.0], [1.0]) == 0.0


def test_ties_use_an_exact_test():
    """Integer-like figures tie a lot; the exact U tables assume no ties, so a permutation test runs."""
    result = compare([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], better="lower")
    assert result.verdict == NOISE and result.p_value == pytest.approx(1.0)
    tied = compare([10, 10, 11, 11, 12], [14, 14, 15, 15, 16], better="lower")
    assert tied.verdict == REGRESSION and tied.p_value == pytest.approx(1 / 252)


# not comparable ----------------------------------------------------------------------------
@pytest.mark.parametrize("base, now", [([10, 10.1], [12, 12.1, 12.2]), ([10, 10.1, 10.2], [12]), ([], [1, 2, 3])])
def test_too_few_samples_is_not_comparable(base, now):
    result = compare(base, now, better="lower")
    assert result.verdict == NOT_COMPARABLE and not result.gating
    assert "at least 3 samples" in result.reason
    if base:
        # the change of the medians is still reported
        assert result.change_pct == pytest.approx(100 * (np.median(now) - np.median(base)) / np.median(base))
    else:
        assert result.change_pct is None


def test_no_better_direction_is_not_comparable():
    result = compare([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], better=None)
    assert result.verdict == NOT_COMPARABLE and not result.gating
    assert result.change_pct == pytest.approx(100 * (13 - 3) / 3)
    assert "better" in result.reason


def test_zero_baseline_is_not_comparable():
    result = compare([0, 0, 0], [1, 1, 1], better="lower")
    assert result.verdict == NOT_COMPARABLE and result.change_pct is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="better"):
        compare([1, 2, 3], [1, 2, 3], better="faster")
    with pytest.raises(ValueError, match="finite"):
        compare([1, 2, float("nan")], [1, 2, 3], better="lower")


# messages and serialisation ----------------------------------------------------------------
def test_describe_names_both_figures_and_the_baseline_run():
    base = [14.50, 14.55, 14.60, 14.52, 14.58]
    now = [13.75, 13.80, 13.85, 13.78, 13.82]
    text = compare(base, now, better="higher", baseline_run="20261126-101500-ab12").describe(
        "text_decode_tokens_per_s", "tok/s")
    assert text.startswith("text_decode_tokens_per_s regressed 5.")
    assert "13.80 tok/s, median of 5" in text and "vs baseline 14.55 tok/s, median of 5" in text
    assert "run 20261126-101500-ab12" in text and "p=0.004" in text and "tolerance 3 %" in text


def test_describe_not_comparable_says_why():
    text = compare([10, 11], [12, 13, 14], better="lower").describe("boot_to_shell_s", "s")
    assert "not comparable" in text and "at least 3 samples" in text and "13.00 s" in text


def test_round_trip_through_dict():
    result = compare([1, 2, 3, 4, 5], [2, 3, 4, 5, 6], better="higher", baseline_run="r1")
    again = Comparison.from_dict({**result.to_dict(), "added_by_a_newer_version": 1})
    assert again == result


def test_measurement_fails_on_a_gating_regression():
    m = Measurement("text_decode_tokens_per_s", [13.7, 13.8, 13.9, 13.75, 13.85], "tok/s")
    m.compared(compare([14.5, 14.6, 14.55, 14.52, 14.58], m.samples, better=m.better, baseline_run="r0"))
    assert m.regressed
    assert m.failures and "regressed" in m.failures[0] and "r0" in m.failures[0]


def test_format_number_keeps_four_significant_digits():
    assert [format_number(x) for x in (13.8, 0.12345, 1234.4, 0.0, None)] == ["13.80", "0.1235", "1234", "0", "?"]
