"""Measurements and limits: verdicts with a marginal band, summaries, serialisation, anomalies."""

from __future__ import annotations

import pytest

from hil.lab.npu import NPUSample, session_loads
from hil.measure.limits import Limit, Limits, LimitsError
from hil.measure.figure import FAIL, MARGINAL, PASS, UNCHECKED, Measurement, better_direction
from hil.measure.records import FigureRecord
from hil.suite import recorder


def test_median_and_spread_of_samples():
    m = Measurement("text_decode_tokens_per_s", [14.0, 14.5, 15.0, 14.2, 14.8], "tok/s")
    assert m.n == 5 and m.median == 14.5
    assert m.iqr == pytest.approx(14.8 - 14.2)
    assert m.spread_pct == pytest.approx(100 * 0.6 / 14.5)
    assert m.better == "higher"


def test_lower_bound_verdicts_pass_marginal_fail():
    limit = Limit(name="decode", unit="tok/s", min=13.0)  # marginal band: 13.0 .. 13.65
    assert Measurement("decode", [14.0]).within(limit).verdict == PASS
    marginal = Measurement("decode", [13.3]).within(limit)
    assert marginal.verdict == MARGINAL and "marginal band" in marginal.violation and marginal.failures == []
    failed = Measurement("decode", [12.0]).within(limit)
    assert failed.verdict == FAIL
    assert failed.failures == ["decode = 12 tok/s is below its lower limit 13 tok/s"]


def test_upper_bound_with_explicit_marginal_band():
    limit = Limit(name="boot_to_shell_s", unit="s", max=60, marginal_max=50)
    assert Measurement("boot_to_shell_s", [49]).within(limit).verdict == PASS
    assert Measurement("boot_to_shell_s", [55]).within(limit).verdict == MARGINAL
    assert Measurement("boot_to_shell_s", [61]).within(limit).verdict == FAIL


def test_no_samples_fails_and_names_the_rejections():
    m = Measurement("decode", [], "tok/s", rejected=["repetition 1: answer lacks ['Paris']"])
    m.within(Limit(name="decode", min=1))
    assert m.verdict == FAIL and "answer lacks ['Paris']" in m.failures[0]


def test_a_limit_shared_by_several_figures_is_named_after_the_figure():
    limit = Limit(name="npu_load_peak_pct", unit="%", min=50)
    m = Measurement("npu_load_peak_pct.Core1", [10, 12], "%").within(limit)
    assert m.verdict == FAIL and m.failures[0].startswith("npu_load_peak_pct.Core1 = 11 %")


def test_without_a_limit_the_figure_is_unchecked_and_direction_comes_from_the_unit():
    m = Measurement("init_ms", [4300.0], "ms").within({})
    assert m.verdict == UNCHECKED and m.better == "lower"
    assert better_direction("", Limit(name="x", max=3)) == "lower"
    assert better_direction("ms", Limit(name="x", min=3, max=5, better="higher")) == "higher"


def test_non_finite_samples_are_refused():
    with pytest.raises(ValueError, match="finite"):
        Measurement("x", [1.0, float("nan")])


def test_to_dict_keeps_samples_limit_and_verdict():
    limit = Limit(name="encoder_ms", unit="ms", max=4440, published=3550, source="rk3576.yaml#2")
    d = Measurement("encoder_ms", [3500, 3600, 3550], "ms").within(limit).to_dict()
    assert d["samples"] == [3500.0, 3600.0, 3550.0] and d["median"] == 3550.0 and d["n"] == 3
    assert d["verdict"] == PASS and d["limit"]["max"] == 4440 and "published 3550" in d["limit"]["text"]
    assert d["comparison"] is None and d["better"] == "lower"


def test_limits_file_takes_marginal_tolerance_and_better(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("limits:\n  - text_decode_tokens_per_s: "
                 "{min: 10, marginal_min: 12, tolerance_pct: 1.5, better: higher, unit: tok/s}\n")
    limit = Limits.load(f).select()["text_decode_tokens_per_s"]
    assert (limit.min, limit.marginal_min, limit.tolerance_pct, limit.better) == (10, 12, 1.5, "higher")


def test_a_later_entry_moves_the_default_marginal_band_with_its_bound(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("limits:\n  - text_decode_tokens_per_s: {min: 20}\n")
    limit = Limits.load(f).select(model="qwen2-vl-2b-instruct_w4a16_rk3576")["text_decode_tokens_per_s"]
    assert limit.min == 20 and limit.marginal_min == pytest.approx(21.0) and limit.published == 14.45


@pytest.mark.parametrize("text,error", [
    ("limits:\n  - encoder_ms: {max: 1, tolerance: 3}\n", "unknown keys ['tolerance']"),
    ("limits:\n  - encoder_ms: {max: 1, better: up}\n", "better must be 'higher' or 'lower'"),
    ("limits:\n  - encoder_ms: {max: 1, marginal_pct: five}\n", "marginal_pct must be a number"),
])
def test_bad_limit_specs_are_named(tmp_path, text, error):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(LimitsError, match=error.replace("[", r"\[").replace("]", r"\]")):
        Limits.load(f)


# --- anomalies: readings left out of a figure as impossible, kept in its record -------------------


def test_anomalies_are_kept_in_the_record_and_name_why_a_figure_has_no_sample():
    m = Measurement("npu_load_peak_pct.text.Core1", [], "%", anomalies=["Core1 read above 100 % in 3 of 3 samples"])
    m.within(Limit(name="npu_load_peak_pct", unit="%", min=50))
    assert m.verdict == FAIL and "Core1 read above 100 % in 3 of 3 samples" in m.failures[0]
    record = FigureRecord.from_dict(m.to_dict())
    assert record.anomalies == ["Core1 read above 100 % in 3 of 3 samples"]
    assert FigureRecord.from_dict({"name": "older run"}).anomalies == [], "a record written before the field"
    assert Measurement("x", [1.0]).to_dict()["anomalies"] == []


def test_npu_load_figures_leave_out_a_core_above_100_percent_and_say_so():
    """rknpu2#102's miscount (``Core1: 429496%``): the sample is in no peak and no chart, and the
    figures' records name it."""
    def sample(t, core0, core1):
        return NPUSample(t, {"Core0": core0, "Core1": core1}, {}, f"NPU load:  Core0: {core0}%, Core1: {core1}%,")

    sessions = [[sample(10.0, 20, 30), sample(10.2, 85, 429496), sample(10.4, 80, 75)],
                [sample(50.0, 60, 64)]]
    load = session_loads(sessions)
    assert load.peaks == {"Core0": [80, 60], "Core1": [75, 64]}
    assert load.t == pytest.approx([0.0, 0.4, 40.0]) and max(load.values["Core1"]) == 75
    why = "session 1: Core1 read above 100 % in 1 of 3 samples (up to 429496 %, board uptime 10.2-10.2 s): " \
          "a driver miscount, left out"
    assert load.anomalies == [why]
    properties = []
    figures = recorder.TestFigures("tests/test_npu_activity.py::test_npu_load_both_cores_text", {}, None,
                                   lambda k, v: properties.append((k, v)))
    figures("npu_load_peak_pct.text.Core1", load.peaks["Core1"], "%", anomalies=load.anomalies).within(
        Limit(name="npu_load_peak_pct", unit="%", min=50))
    (m,) = figures.measurements
    assert m.anomalies == [why] and FigureRecord.from_dict(m.to_dict()).anomalies == [why]
    assert ("npu_load_peak_pct.text.Core1.anomalies", why) in properties
    assert session_loads([[sample(1.0, 429496, 5)]]).peaks == {"Core0": [], "Core1": []}, "nothing left to peak"
