"""Soak: hours of inference with every answer right, memory that does not grow, throughput that
does not fall.

A long test, chosen with ``-m soak`` (or ``--soak-duration 2h``). One demo session alternates
the reference text prompt and picture question for the whole duration (``hil.suite.soak``);
each window (a twentieth of the soak) is kept in the run folder as it ends. Gated: the
demo's memory growth, proven by the low end of its slope's 95 % interval (MiB per hour), and
the decode rate of the last tenth of the soak against its first, and each CPU cluster's use
(the median of its windows, held to the session limits). Recorded: the slopes, when the NPU
clock first fell below its lock, and every series over the soak for the report.
"""

import pytest

from hil.lab.npu import NPU_DEVFREQ
from hil.measure.endurance import leak_mib_per_hour
from hil.rockchip import cpustat


def _rss(window):
    return max(window.board.rss_mib.values()) if window.board.rss_mib else None


@pytest.mark.soak("soak")
@pytest.mark.figures("soak_turns", "soak_decode_drift_pct", "soak_decode_slope_tps_per_h", "soak_rss_growth_mib_per_h",
                     "soak_rss_growth_low_mib_per_h", "soak_cpu_busy_pct.policy0", "soak_cpu_busy_pct.policy4")
def test_inference_soak(soak, locked_frequencies, measure, model_limits, record_property):
    result = soak.run()
    if result.error and not result.turns:
        pytest.fail(f"the soak did not start: {result.error}", pytrace=False)
    measure("soak_turns", [len(result.turns)], "turns").within(model_limits)

    decode = result.drift(lambda w: w.decode_tps)
    if decode.ratio is not None:
        measure("soak_decode_drift_pct", [100 * (decode.ratio - 1)], "%").within(model_limits)
    if decode.slope_per_hour is not None:
        measure("soak_decode_slope_tps_per_h", [decode.slope_per_hour], "tok/s/h").within(model_limits)

    slope, low, high = leak_mib_per_hour(*result.series(_rss))
    if slope is not None:
        measure("soak_rss_growth_mib_per_h", [slope], "MiB/h").within(model_limits)
    if low is not None:
        measure("soak_rss_growth_low_mib_per_h", [low], "MiB/h").within(model_limits)
        record_property("soak_rss_growth", f"{slope:.2f} MiB/h (95 % interval {low:.2f} to {high:.2f})")
    cma = leak_mib_per_hour(*result.series(lambda w: w.board.cma_used_mib))
    if cma[1] is not None:
        measure("soak_cma_growth_low_mib_per_h", [cma[1]], "MiB/h").within(model_limits)

    onset = result.throttle_onset_s(locked_frequencies.expected.get(NPU_DEVFREQ))
    record_property("soak_throttle_onset_s", "never" if onset is None else f"{onset:.1f}")
    if onset is not None:
        measure("soak_throttle_onset_s", [onset], "s").within(model_limits)

    t = [w.t for w in result.windows]
    clusters = sorted({c for w in result.windows for c in w.cpu_busy_pct})
    cpu = {c: [w.cpu_busy_pct.get(c) for w in result.windows] for c in clusters}
    for c in clusters:
        measure(f"soak_cpu_busy_pct.{c}", [v for v in cpu[c] if v is not None], "%",
                rejected=[f"window {w.index}: no counters for {c}" for w in result.windows
                          if w.cpu_busy_pct.get(c) is None]).within(
            model_limits.get("cpu_a53_busy_pct" if c == "policy0" else "cpu_a72_busy_pct"))
    measure.series("soak_cpu", "%", t, {cpustat.cluster_label(c): cpu[c] for c in clusters})
    measure.series("soak_throughput", "tok/s", t, {"decode": [w.decode_tps for w in result.windows],
                                                   "prefill": [w.prefill_tps for w in result.windows]})
    measure.series("soak_memory", "MiB", t, {"demo RSS": [_rss(w) for w in result.windows],
                                             "runtime peak": [w.peak_memory_mib for w in result.windows],
                                             "CMA in use": [w.board.cma_used_mib for w in result.windows],
                                             "DMA-buf": [w.board.dmabuf_mib for w in result.windows]})
    measure.series("soak_clocks", "MHz", t, {"NPU": [w.board.npu_hz / 1e6 if w.board.npu_hz else None
                                                     for w in result.windows],
                                             "DDR": [w.board.ddr_hz / 1e6 if w.board.ddr_hz else None
                                                     for w in result.windows]})
    zones = sorted({z for w in result.windows for z in w.board.temps_c})
    measure.series("soak_temperatures", "°C", t, {z: [w.board.temps_c.get(z) for w in result.windows] for z in zones})

    if result.wrong is not None:
        w = result.wrong
        pytest.fail(f"turn {w.n} ({w.prompt_id}, {w.t:.0f} s into the soak): {w.problem}: {w.answer[:300]!r}",
                    pytrace=False)
    if result.error:
        pytest.fail(f"the soak ended after {len(result.turns)} turns and {result.seconds:.0f} s: {result.error}",
                    pytrace=False)
