"""Frequencies: CPU, NPU and DDR lock like fix_freq_rk3576.sh, and come back afterwards."""


def test_lock_and_restore(npu, record_property):
    before = {node: npu.devfreq(node)["governor"] for node in ("27700000.npu", "dmc")}
    lock = npu.lock_frequencies()
    try:
        wrong = {node: (want, got) for node, (want, got) in lock.check().items() if want != got}
        for node, (want, got) in lock.check().items():
            record_property(f"locked.{node}", got)
    finally:
        npu.restore(lock)
    after = {node: npu.devfreq(node)["governor"] for node in before}
    assert not wrong, "locked clocks read back wrong: " + ", ".join(
        f"{node} cur_freq {got}, expected {want}" for node, (want, got) in wrong.items())
    assert after == before, f"governors not restored: before {before}, after {after}"
