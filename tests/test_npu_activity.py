"""The NPU during inference: both cores busy, temperatures in range, no thermal throttling."""

import pytest


def _samples(text_inference, multimodal_inference):
    runs = [text_inference, *multimodal_inference]
    samples = [s for r in runs if r.demo is not None for s in r.samples]
    if not samples:
        pytest.fail("no inference ran, so the NPU was never sampled: " +
                    "; ".join(r.error for r in runs if r.error), pytrace=False)
    return samples


def test_npu_load_both_cores(text_inference, multimodal_inference, figures):
    samples = _samples(text_inference, multimodal_inference)
    for core in ("Core0", "Core1"):
        figures.record(f"npu_load_peak_pct.{core}", max(s.load.get(core, 0) for s in samples), "%")
        limit = figures.limits.get("npu_load_peak_pct")
        peak = max(s.load.get(core, 0) for s in samples)
        if limit is not None and limit.violation(peak):
            figures.violations.append(f"{core}: {limit.violation(peak)}")
    figures.record("npu_samples", len(samples))
    figures.check()


def test_temperatures(text_inference, multimodal_inference, figures):
    samples = _samples(text_inference, multimodal_inference)
    zones = sorted({z for s in samples for z in s.temps})
    assert zones, "no thermal zone was readable during inference"
    for zone in zones:
        peak = max(s.temps[zone] for s in samples if zone in s.temps)
        name = "npu_temperature_c" if zone.startswith("npu") else "soc_temperature_c"
        figures.record(f"max_temperature_c.{zone}", peak, "°C")
        limit = figures.limits.get(name)
        if limit is not None and limit.violation(peak):
            figures.violations.append(f"{zone}: {limit.violation(peak)}")
    figures.check()


def test_no_thermal_throttling(text_inference, multimodal_inference, locked_frequencies):
    samples = _samples(text_inference, multimodal_inference)
    locked = locked_frequencies.locked.get("27700000.npu")
    slow = [s for s in samples if s.npu_freq is not None and locked and s.npu_freq < locked]
    if slow:
        worst = min(slow, key=lambda s: s.npu_freq)
        hottest = max(worst.temps.values()) if worst.temps else float("nan")
        pytest.fail(f"thermal throttling: the NPU clock fell from {locked / 1e6:.0f} MHz to "
                    f"{worst.npu_freq / 1e6:.0f} MHz during inference (hottest zone {hottest:.1f} °C, "
                    f"{len(slow)} of {len(samples)} samples below the locked clock)", pytrace=False)
