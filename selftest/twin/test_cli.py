"""`hil twin up/status/down` as a user runs them, and the suite starting its own bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hil.paths import REPO
from hil.twin.bench import free_base_port
from hil.twin.handle import BenchHandle
from hil.twin import bench as benchmod


def hil(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HIL_BENCH_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def qemu_pids(state_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system-aarch64" in cmd and str(state_dir) in cmd:
                pids.append(int(entry.name))
    return pids


def test_up_status_down_leaves_nothing(twin_images, tmp_path):
    base = str(free_base_port(24000))
    up = hil(tmp_path, "twin", "up", "--boards", "2", "--base-port", base, "--power-on", "--timescale", "0.1")
    assert up.returncode == 0, up.stderr
    assert f"board 2: power http://127.0.0.1:{base}/outlet/2" in up.stdout
    again = hil(tmp_path, "twin", "up", "--base-port", base)
    assert again.returncode == 2 and "already running" in again.stderr
    status = json.loads(hil(tmp_path, "twin", "status", "--json").stdout)
    assert [b["power"] for b in status["boards"]] == [True, True]
    assert len(qemu_pids(tmp_path)) == 2
    down = hil(tmp_path, "twin", "down")
    assert down.returncode == 0 and "bench stopped" in down.stdout
    assert qemu_pids(tmp_path) == []
    assert hil(tmp_path, "twin", "status").returncode == 3
    bench_pid = status["pid"]
    assert not Path(f"/proc/{bench_pid}").exists() or "Z" in Path(f"/proc/{bench_pid}/stat").read_text().split()[2]


def test_up_with_unknown_image_or_busy_port_says_why(twin_images, tmp_path):
    base = free_base_port(25000)
    proc = hil(tmp_path, "twin", "up", "--base-port", str(base), "--image", "twin-nope")
    assert proc.returncode == 2 and "image twin-nope not found" in proc.stderr and "hil twin build" in proc.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 11))
        s.listen()
        proc = hil(tmp_path / "b", "twin", "up", "--base-port", str(base))
    assert proc.returncode == 2 and f"port 127.0.0.1:{base + 11} is in use" in proc.stderr


def test_suite_starts_and_stops_its_own_bench(twin_images, tmp_path):
    state_dir = tmp_path / "bench"
    config = benchmod.BenchConfig(base_port=free_base_port(26000), state_dir=state_dir)
    env_file = BenchHandle(config, {"url": config.url}).env_file(tmp_path)
    env = {**os.environ, "HIL_BENCH_DIR": str(state_dir)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file), str(REPO / "tests" / "test_boot.py"),
                           "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO)
    assert "2 passed" in proc.stdout, proc.stdout[-2000:]
    assert benchmod.read_state(state_dir) is None and qemu_pids(state_dir) == []

    # A bench that was already running is used and left running.
    state = benchmod.up(config)
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file),
                               str(REPO / "tests" / "test_boot.py"), "-q", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
        assert "2 passed" in proc.stdout, proc.stdout[-2000:]
        assert benchmod.read_state(state_dir)["pid"] == state["pid"]
    finally:
        benchmod.down(state_dir)
