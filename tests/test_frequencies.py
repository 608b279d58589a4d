"""Frequencies: CPU, NPU and DDR lock like fix_freq_rk3576.sh, and come back afterwards."""


def _expected(npu, node: str, target: int) -> int:
    """devfreq and cpufreq clamp a request to the highest operating point not above it."""
    if node.startswith("policy"):
        available = npu.cpufreq(node.removeprefix("policy"))["scaling_available_frequencies"]
    else:
        available = npu.devfreq(node)["available_frequencies"]
    fitting = [f for f in available if f <= target]
    return max(fitting) if fitting else min(available)


def _governors(npu) -> dict:
    return {"27700000.npu": npu.devfreq("27700000.npu")["governor"], "dmc": npu.devfreq("dmc")["governor"],
            "policy0": npu.cpufreq(0)["scaling_governor"], "policy4": npu.cpufreq(4)["scaling_governor"]}


def test_lock_and_restore(npu, record_property):
    before = _governors(npu)
    lock = npu.lock_frequencies()
    try:
        expected = {node: _expected(npu, node, target) for node, target in lock.targets.items()}
    finally:
        npu.restore(lock)
    after = _governors(npu)
    for node, got in lock.locked.items():
        record_property(f"locked.{node}", got)
    assert {"27700000.npu", "dmc", "policy0", "policy4"} <= set(lock.targets), \
        f"not every clock was locked: {sorted(lock.targets)}; missing on the board: {lock.missing}"
    wrong = {node: (want, lock.locked.get(node)) for node, want in expected.items() if lock.locked.get(node) != want}
    assert not wrong, "locked clocks read back wrong: " + ", ".join(
        f"{node} cur_freq {got}, expected {want}" for node, (want, got) in wrong.items())
    assert after == before, f"governors not restored: before {before}, after {after}"
