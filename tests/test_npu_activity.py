"""The NPU during inference: both cores busy, temperatures in range, no thermal throttling."""

import pytest


def _runs(text_inference, multimodal_inference, text_benchmark, multimodal_benchmark):
    runs = [r for r in (text_inference, *multimodal_inference, text_benchmark.run, multimodal_benchmark.run)
            if r.demo is not None and r.samples]
    if not runs:
        every = (text_inference, *multimodal_inference)
        pytest.fail("no inference ran, so the NPU was never sampled: " +
                    "; ".join(dict.fromkeys(r.error for r in every if r.error)), pytrace=False)
    return runs


@pytest.fixture(scope="module")
def sessions(text_inference, multimodal_inference, text_benchmark, multimodal_benchmark):
    """The NPU samples of every inference session, one list per session."""
    return [r.samples for r in _runs(text_inference, multimodal_inference, text_benchmark, multimodal_benchmark)]


def test_npu_load_both_cores(sessions, measure, model_limits):
    """Each session's peak load per core: the inference ran on both NPU cores."""
    samples = [s for session in sessions for s in session]
    t0 = samples[0].t
    measure.series("npu_load", "%", [s.t - t0 for s in samples],
                   {core: [s.load.get(core, 0) for s in samples] for core in ("Core0", "Core1")})
    for core in ("Core0", "Core1"):
        peaks = [max(s.load.get(core, 0) for s in session) for session in sessions]
        measure(f"npu_load_peak_pct.{core}", peaks, "%").within(model_limits.get("npu_load_peak_pct"))


def test_temperatures(sessions, measure, model_limits):
    """Each session's hottest reading per thermal zone, within the zone's limit."""
    samples = [s for session in sessions for s in session]
    zones = sorted({z for s in samples for z in s.temps})
    assert zones, "no thermal zone was readable during inference"
    t0 = samples[0].t
    measure.series("temperature", "°C", [s.t - t0 for s in samples],
                   {z: [s.temps.get(z) for s in samples] for z in zones})
    for zone in zones:
        peaks = [max(s.temps[zone] for s in session if zone in s.temps) for session in sessions
                 if any(zone in s.temps for s in session)]
        limit = model_limits.get("npu_temperature_c" if zone.startswith("npu") else "soc_temperature_c")
        measure(f"max_temperature_c.{zone}", peaks, "°C").within(limit)


def test_no_thermal_throttling(sessions, locked_frequencies):
    samples = [s for session in sessions for s in session]
    locked = locked_frequencies.locked.get("27700000.npu")
    slow = [s for s in samples if s.npu_freq is not None and locked and s.npu_freq < locked]
    if slow:
        worst = min(slow, key=lambda s: s.npu_freq)
        hottest = max(worst.temps.values()) if worst.temps else float("nan")
        pytest.fail(f"thermal throttling: the NPU clock fell from {locked / 1e6:.0f} MHz to "
                    f"{worst.npu_freq / 1e6:.0f} MHz during inference (hottest zone {hottest:.1f} °C, "
                    f"{len(slow)} of {len(samples)} samples below the locked clock)", pytrace=False)
