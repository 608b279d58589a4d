"""CPU utilisation per cluster beside the NPU load: the sampler's lines with /proc/stat's cpu
lines (made of real captures, the format test_npu_driver.py checks the board-side loop prints),
each session's figure per cluster, the chart series drawn with the NPU load, and a board, or a
twin booted with fewer CPUs than its cpufreq policies name, whose /proc/stat lacks a cluster.

Second snapshots are CONSTRUCTED from real first ones by adding known ticks (``with_ticks``), so
every percentage is checked by hand."""

from __future__ import annotations

import pytest

from hil.lab.npu import NPUSample, cpu_series_label, parse_samples, session_cpu, session_loads
from hil.measure.figure import FAIL, PASS, Measurement
from hil.measure.limits import Limits
from hil.rockchip import cpustat as cs
from hil.rockchip.cpustat import ALL
from selftest.unit.test_cpustat import KERNEL_DOC, RHEL4_TWO_FILES, sampler_field, with_ticks

RK3576 = cs.RK3576_CLUSTERS
EIGHT = cs.snapshots(RHEL4_TWO_FILES)[1]  # RHEL 4 Reference Guide: a real eight-CPU /proc/stat
TWO = cs.parse_stat(KERNEL_DOC)  # the kernel's proc.txt example: two CPUs, as a twin run with -smp 2


def _line(t: float, snap: dict | None, load=(80, 75), freq: int | None = 950_000_000) -> str:
    """One line as the sampler prints it (``snap`` None: a sampler without the CPU field)."""
    line = f"@npu {t:.2f}\tNPU load:  Core0: {load[0]:2d}%, Core1: {load[1]:2d}%,\tsoc-thermal=42500 npu-thermal=50250 "
    if freq is not None or snap is not None:
        line += f"\t{freq if freq is not None else ''}"
    if snap is not None:
        line += "\t" + sampler_field("".join(f"cpu{'' if k == ALL else k} {' '.join(map(str, v))}\n"
                                       for k, v in snap.items()))
    return line + "\n"


def _session(*snaps, t0: float = 100.0, step: float = 0.2, loads=None) -> list[NPUSample]:
    text = "".join(_line(t0 + i * step, s, load=(loads or {}).get(i, (80, 75))) for i, s in enumerate(snaps))
    return parse_samples(text)


def _ticks(snap, **adds):
    """``snap`` with 20 ticks added per CPU, idle unless ``adds`` says otherwise."""
    return with_ticks(snap, **{**{f"cpu{c}": {"idle": 20} for c in snap if c != ALL}, **adds})


# --- the line ---------------------------------------------------------------------------------


def test_lines_with_and_without_the_cpu_field():
    text = ("@npu 12.50\tNPU load:  Core0: 10%, Core1:  0%,\tsoc-thermal=42500 \n"  # the first sampler
            "@npu 12.70\tNPU load:  Core0: 20%, Core1:  0%,\tsoc-thermal=42500 \t950000000\n"  # with the NPU clock
            + _line(12.9, EIGHT)
            + "@npu 13.10\tNPU load:  Core0: 20%, Core1:  0%,\tsoc-thermal=42500 \t950000000\t\n")  # no /proc/stat
    samples = parse_samples(text)
    assert [s.t for s in samples] == [12.5, 12.7, 12.9, 13.1]
    assert [s.cpu for s in samples] == [None, None, {k: v for k, v in EIGHT.items() if k != ALL}, {}]
    assert samples[2].npu_freq == 950_000_000 and samples[2].load == {"Core0": 80, "Core1": 75}
    assert samples[0] == NPUSample(12.5, {"Core0": 10, "Core1": 0}, {"soc-thermal": 42.5},
                                   "NPU load:  Core0: 10%, Core1:  0%,"), "an old line reads as it did"


def test_an_unfinished_cpu_field_is_no_sample():
    text = _line(1.0, EIGHT) + _line(1.2, EIGHT)[:-40]
    assert len(parse_samples(text)) == 1


# --- a session's figure per cluster --------------------------------------------------------------


def test_each_session_first_to_last_sample_per_cluster():
    # two of the four A72 cores busy through the session (what rknn-llm#263 reports), the A53s idle
    mid = _ticks(EIGHT, cpu4={"user": 20}, cpu5={"user": 18, "system": 2})
    last = _ticks(mid, cpu4={"user": 20}, cpu5={"user": 20}, cpu0={"user": 4, "idle": 16})
    first_session = _session(EIGHT, mid, last)
    # a second session with three busy A72 cores and one sample without counters in the middle
    later = _ticks(last, cpu4={"user": 20}, cpu5={"user": 20}, cpu6={"system": 20})
    second = _session(last, None, later, t0=200.0)
    cpu = session_cpu([first_session, second], RK3576)
    assert cpu.busy == {"policy0": [2.5, 0.0], "policy4": [50.0, 75.0]}
    assert cpu.missing == {"policy0": [], "policy4": []} and cpu.partial == {"policy0": [], "policy4": []}
    assert cpu.problems == [] and cpu.rejected("policy4") == []


def test_a_cluster_proc_stat_does_not_show_is_named_never_zero():
    """The twin booted with two CPUs while its cpufreq policies say 0-3 and 4-7: the A53 figure is
    over cpu0-1 and says so; the A72 cluster has no figure, and its figure fails with the reason."""
    mid = _ticks(TWO, cpu0={"user": 5, "idle": 15})
    session = _session(TWO, mid, _ticks(mid, cpu1={"user": 10, "idle": 10}))  # 15 busy of 80 ticks
    cpu = session_cpu([session, session], RK3576)
    assert cpu.busy == {"policy0": [18.75, 18.75], "policy4": []}
    assert cpu.partial["policy0"] == ["sessions 1, 2: policy0 (Cortex-A53, CPUs 0-3): cpu2-3 not in /proc/stat "
                                      "(offline, or not present on this board); its figure is over cpu0-1 only"]
    assert cpu.rejected("policy4") == ["sessions 1, 2: policy4 (Cortex-A72, CPUs 4-7): none of its CPUs is in "
                                       "/proc/stat, which shows cpu0-1: offline, or not present on this board"]
    limits = Limits.load().select(model="qwen2-vl-2b-instruct_w4a16_rk3576")
    big = Measurement("cpu_busy_pct.text.policy4", cpu.busy["policy4"], "%", rejected=cpu.rejected("policy4"),
                      anomalies=cpu.partial["policy4"]).within(limits["cpu_a72_busy_pct"])
    assert big.verdict == FAIL and big.violation == ("cpu_busy_pct.text.policy4: no accepted sample ("
                                                     + cpu.rejected("policy4")[0] + ")")
    little = Measurement("cpu_busy_pct.text.policy0", cpu.busy["policy0"], "%", rejected=cpu.rejected("policy0"),
                         anomalies=cpu.partial["policy0"]).within(limits["cpu_a53_busy_pct"])
    assert little.verdict == PASS and little.median == 18.75 and little.anomalies == cpu.partial["policy0"]


def test_sessions_without_two_counted_samples_are_named():
    old = parse_samples("@npu 1.00\tNPU load:  Core0: 80%, Core1: 75%,\tsoc-thermal=42500 \t950000000\n" * 3)
    cpu = session_cpu([old, _session(EIGHT), _session(EIGHT, _ticks(EIGHT))], RK3576)
    assert cpu.busy == {"policy0": [0.0], "policy4": [0.0]}
    assert cpu.problems == [
        "session 1: no sample held /proc/stat counters (a sampler without the CPU field, or /proc/stat unreadable)",
        "session 2: only one sample held /proc/stat counters: no interval to measure"]
    assert cpu.rejected("policy0") == cpu.problems


def test_counters_that_went_back_give_no_figure():
    reset = dict(EIGHT)
    for c in (4, 5, 6, 7):  # the A72s' idle restarted, as after a hotplug
        reset[c] = EIGHT[c]._replace(idle=100)
    cpu = session_cpu([_session(EIGHT, reset)], RK3576)
    assert cpu.busy["policy4"] == [] and cpu.missing["policy4"] == [
        "session 1: policy4 (Cortex-A72, CPUs 4-7): its counters went back or did not move between the first and "
        "the last sample (a CPU hot-plugged?)"]


# --- the chart ----------------------------------------------------------------------------------


def test_the_npu_load_chart_gets_each_cluster_between_samples():
    mid = _ticks(EIGHT, cpu4={"user": 20}, cpu5={"user": 20})
    last = _ticks(mid, cpu4={"user": 20}, cpu0={"user": 20})
    # the second sample reads a core above 100 %: left out of the chart, its interval joins the next
    session = _session(EIGHT, mid, last, loads={1: (429496, 5)})
    load = session_loads([session, _session(EIGHT, _ticks(EIGHT), t0=101.0)], clusters=RK3576)
    assert load.t == pytest.approx([0.0, 0.4, 1.0, 1.2])
    assert load.values == {"Core0": [80, 80, 80, 80], "Core1": [75, 75, 75, 75]}
    # policy4: 60 busy of 160 ticks over the two intervals; policy0: 20 of 160; each session starts with a gap
    assert load.cpu == {"CPU policy0 (Cortex-A53)": [None, 12.5, None, 0.0],
                        "CPU policy4 (Cortex-A72)": [None, 37.5, None, 0.0]}
    assert cpu_series_label("policy4") == "CPU policy4 (Cortex-A72)"
    assert session_loads([session]).cpu == {}, "no clusters given: the NPU load alone, as before"
    two = session_loads([_session(TWO, _ticks(TWO))], clusters=RK3576)
    assert list(two.cpu) == ["CPU policy0 (Cortex-A53)"], "a cluster /proc/stat does not show draws no line"


# --- the limits -----------------------------------------------------------------------------------


def test_the_cluster_limits():
    limits = Limits.load().select(model="qwen2-vl-2b-instruct_w4a16_rk3576", runtime="1.2.3")
    big, little = limits["cpu_a72_busy_pct"], limits["cpu_a53_busy_pct"]
    assert (big.max, little.max, big.better, little.better) == (90, 90, "lower", "lower")
    assert Measurement("cpu_busy_pct.text.policy4", [50.0], "%").within(big).verdict == PASS, "two A72s: rknn-llm#263"
    held = Measurement("cpu_busy_pct.text.policy4", [100.0, 96.0, 98.5], "%").within(big)
    assert held.verdict == FAIL and held.violation.startswith("cpu_busy_pct.text.policy4 = 98.5 % is above its upper")
    assert held.better == "lower"
