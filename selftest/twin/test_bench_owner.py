"""A bench started by a run stops when that run is gone, even after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hil.twin import bench as benchmod
from hil.twin.bench import free_base_port


def _qemu_pids(state_dir) -> list[int]:
    pids = []
    for pidfile in state_dir.glob("board-*/run/qemu.pid"):
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, 0)
            pids.append(pid)
        except (OSError, ValueError):
            pass
    return pids


def test_a_bench_whose_run_is_killed_stops_itself(twin_images, tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    config = benchmod.BenchConfig(boards=1, base_port=free_base_port(26000), timescale=0.05,
                                  state_dir=tmp_path / "bench", owner=owner.pid)
    state = benchmod.up(config)
    try:
        assert state["owner"] == owner.pid and not benchmod.orphaned(state)
        benchmod.get(state["url"] + "/outlet/1/1")  # a running QEMU to be left behind
        deadline = time.monotonic() + 30
        while not _qemu_pids(config.state_dir):
            assert time.monotonic() < deadline, "the board did not power on"
            time.sleep(0.1)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert benchmod.orphaned(state)
        deadline = time.monotonic() + 30
        while benchmod.read_state(config.state_dir) is not None or _qemu_pids(config.state_dir):
            assert time.monotonic() < deadline, "the bench of a killed run is still running after 30 s"
            time.sleep(0.2)
    finally:
        owner.kill()
        benchmod.down(config.state_dir)
