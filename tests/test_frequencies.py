"""Frequencies: CPU, NPU and DDR lock like fix_freq_rk3576.sh, and come back afterwards."""

from hil.lab.npu import CPU_DIR, CPUIDLE_CPUS, CPUIDLE_STATE


def _expected(npu, node: str, target: int) -> int:
    """devfreq and cpufreq clamp a request to the highest operating point not above it."""
    if node.startswith("policy"):
        available = npu.cpufreq(node.removeprefix("policy"))["scaling_available_frequencies"]
    else:
        available = npu.devfreq(node)["available_frequencies"]
    fitting = [f for f in available if f <= target]
    return max(fitting) if fitting else min(available)


def _settings(npu, shell) -> dict:
    """What a lock changes and a restore must put back: governors, frequency bounds, cpuidle."""
    out = {}
    for node in ("27700000.npu", "dmc"):
        d = npu.devfreq(node)
        out[node] = (d["governor"], d["min_freq"], d["max_freq"])
    for policy in (0, 4):
        c = npu.cpufreq(policy)
        out[f"policy{policy}"] = (c["scaling_governor"], c["scaling_min_freq"], c["scaling_max_freq"])
    paths = " ".join(f"{CPU_DIR}/cpu{c}/cpuidle/{CPUIDLE_STATE}/disable" for c in CPUIDLE_CPUS)
    out["cpuidle"] = shell.run_check(f"cat {paths} 2>/dev/null || true", timeout=10)
    return out


def test_lock_and_restore(npu, shell, record_property):
    before = _settings(npu, shell)
    lock = npu.lock_frequencies()
    try:
        expected = {node: _expected(npu, node, target) for node, target in lock.targets.items()}
    finally:
        npu.restore(lock)
    after = _settings(npu, shell)
    for node, got in lock.locked.items():
        record_property(f"locked.{node}", got)
    assert {"27700000.npu", "dmc", "policy0", "policy4"} <= set(lock.targets), \
        f"not every clock was locked: {sorted(lock.targets)}; missing on the board: {lock.missing}"
    wrong = {node: (want, lock.locked.get(node)) for node, want in expected.items() if lock.locked.get(node) != want}
    assert not wrong, "locked clocks read back wrong: " + ", ".join(
        f"{node} cur_freq {got}, expected {want}" for node, (want, got) in wrong.items())
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not changed, "not restored after the lock (before, after): " + ", ".join(
        f"{k} {b} -> {a}" for k, (b, a) in changed.items())
