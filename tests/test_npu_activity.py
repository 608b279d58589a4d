"""The NPU during inference: both cores busy, the CPUs not held busy beside it, temperatures in
range, no thermal throttling.

Checked per kind of inference (text, multimodal), each from the NPU samples of its own demo
sessions, so a farm can run the two kinds on different boards.
"""

import pytest

from hil.lab.npu import NPU_DEVFREQ, session_cpu, session_loads


@pytest.fixture(scope="module")
def text_sessions(text_inference, text_benchmark):
    return _sessions([text_inference, text_benchmark.run])


@pytest.fixture(scope="module")
def multimodal_sessions(multimodal_inference, multimodal_benchmark):
    return _sessions([*multimodal_inference, multimodal_benchmark.run])


def _sessions(runs) -> list:
    """The NPU samples of each inference session that ran, one list per session."""
    sampled = [r.samples for r in runs if r.demo is not None and r.samples]
    if not sampled:
        pytest.fail("no inference ran, so the NPU was never sampled: " +
                    "; ".join(dict.fromkeys(r.error for r in runs if r.error)), pytrace=False)
    return sampled


def _load_both_cores(sessions, clusters, measure, limits, kind: str) -> None:
    """Each session's peak load per core: the inference ran on both NPU cores. A sample with a
    core above 100 % (a driver miscount) is in no peak and no chart, and named in each figure.
    The chart also draws each CPU cluster's utilisation between samples."""
    load = session_loads(sessions, clusters=clusters)
    if load.t:
        measure.series(f"npu_load.{kind}", "%", load.t, {**load.values, **load.cpu})
    for core, peaks in load.peaks.items():
        measure(f"npu_load_peak_pct.{kind}.{core}", peaks, "%",
                anomalies=load.anomalies).within(limits.get("npu_load_peak_pct"))


def _cpu_busy(sessions, clusters, measure, limits, kind: str) -> None:
    """Each session's CPU utilisation per cluster, first to last sample: what the runtime keeps
    busy beside the NPU. A cluster whose CPUs /proc/stat does not show has no figure, and says so."""
    cpu = session_cpu(sessions, clusters)
    for cluster in clusters:
        measure(f"cpu_busy_pct.{kind}.{cluster}", cpu.busy[cluster], "%", rejected=cpu.rejected(cluster),
                anomalies=cpu.partial[cluster]).within(
            limits.get("cpu_a53_busy_pct" if cluster == "policy0" else "cpu_a72_busy_pct"))


def _temperatures(sessions, measure, limits, kind: str) -> None:
    """Each session's hottest reading per thermal zone, within the zone's limit."""
    samples = [s for session in sessions for s in session]
    zones = sorted({z for s in samples for z in s.temps})
    assert zones, "no thermal zone was readable during inference"
    t0 = samples[0].t
    measure.series(f"temperature.{kind}", "°C", [s.t - t0 for s in samples],
                   {z: [s.temps.get(z) for s in samples] for z in zones})
    for zone in zones:
        peaks = [max(s.temps[zone] for s in session if zone in s.temps) for session in sessions
                 if any(zone in s.temps for s in session)]
        limit = limits.get("npu_temperature_c" if zone.startswith("npu") else "soc_temperature_c")
        measure(f"max_temperature_c.{kind}.{zone}", peaks, "°C").within(limit)


def _mhz(hz: int) -> str:
    return f"{hz / 1e6:.0f} MHz"


def _no_throttling(sessions, lock) -> None:
    """The NPU ran at the clock it was locked to during inference, and was there when locked.

    The clock asked for is the lock's target clamped to the NPU's highest operating point
    (``lock.expected``): a board whose OPP table tops out below the target is not throttled.
    The read-back after locking (``lock.locked``) is no reference, as a board already
    throttled when the lock was taken reads back the throttled clock.
    """
    samples = [s for session in sessions for s in session]
    asked = lock.expected.get(NPU_DEVFREQ)
    if not asked:
        pytest.fail(f"the NPU clock ({NPU_DEVFREQ}) was not locked, so throttling cannot be told", pytrace=False)
    target = lock.targets.get(NPU_DEVFREQ)
    what = f"the {_mhz(asked)} asked" + (f" ({_mhz(target)} clamped to its highest operating point)"
                                         if target and target != asked else "")
    problems = []
    if NPU_DEVFREQ in lock.below_expected():
        _, read_back = lock.below_expected()[NPU_DEVFREQ]
        problems.append(f"the NPU clock read back {_mhz(read_back)} right after locking, below {what}: "
                        "held down already when locked")
    clocked = [s for s in samples if s.npu_freq is not None]
    slow = [s for s in clocked if s.npu_freq < asked]
    if slow:
        worst = min(slow, key=lambda s: s.npu_freq)
        hottest = max(worst.temps.values()) if worst.temps else float("nan")
        problems.append(f"the NPU clock fell to {_mhz(worst.npu_freq)} during inference, below {what}, in "
                        f"{len(slow)} of {len(clocked)} samples (hottest zone {hottest:.1f} °C)")
    if problems:
        pytest.fail("thermal throttling: " + "; ".join(problems), pytrace=False)
    if not clocked:
        pytest.fail(f"none of the {len(samples)} NPU samples read the clock ({NPU_DEVFREQ}/cur_freq), so "
                    "throttling during inference cannot be told", pytrace=False)


@pytest.mark.figures("npu_load_peak_pct.text.Core0", "npu_load_peak_pct.text.Core1")
def test_npu_load_both_cores_text(text_sessions, cpu_clusters, measure, model_limits):
    _load_both_cores(text_sessions, cpu_clusters, measure, model_limits, "text")


@pytest.mark.figures("npu_load_peak_pct.multimodal.Core0", "npu_load_peak_pct.multimodal.Core1")
def test_npu_load_both_cores_multimodal(multimodal_sessions, cpu_clusters, measure, model_limits):
    _load_both_cores(multimodal_sessions, cpu_clusters, measure, model_limits, "multimodal")


@pytest.mark.figures("cpu_busy_pct.text.policy0", "cpu_busy_pct.text.policy4")
def test_cpu_busy_per_cluster_text(text_sessions, cpu_clusters, measure, model_limits):
    _cpu_busy(text_sessions, cpu_clusters, measure, model_limits, "text")


@pytest.mark.figures("cpu_busy_pct.multimodal.policy0", "cpu_busy_pct.multimodal.policy4")
def test_cpu_busy_per_cluster_multimodal(multimodal_sessions, cpu_clusters, measure, model_limits):
    _cpu_busy(multimodal_sessions, cpu_clusters, measure, model_limits, "multimodal")


def test_temperatures_text(text_sessions, measure, model_limits):
    _temperatures(text_sessions, measure, model_limits, "text")


def test_temperatures_multimodal(multimodal_sessions, measure, model_limits):
    _temperatures(multimodal_sessions, measure, model_limits, "multimodal")


def test_no_thermal_throttling_text(text_sessions, locked_frequencies):
    _no_throttling(text_sessions, locked_frequencies)


def test_no_thermal_throttling_multimodal(multimodal_sessions, locked_frequencies):
    _no_throttling(multimodal_sessions, locked_frequencies)
