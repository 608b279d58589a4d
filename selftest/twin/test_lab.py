"""The bench as a labgrid lab: coordinator, exporter and places, used with labgrid-client
and by the suite, exactly through env/twin.yaml."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hil.paths import REPO


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=2)


def client(env_file, *args, user: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0"}
    if user:
        env["LG_USERNAME"] = user
    return subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-c", str(env_file), *args],
                          capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_places_carry_the_boards_resources(bench):
    proc = subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-x", bench.state["coordinator"], "resources"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0"})
    assert proc.returncode == 0, proc.stderr
    for board in (1, 2):
        for cls in ("NetworkPowerPort", "NetworkSerialPort", "NetworkService", "HttpDigitalOutput", "TwinUSBLoader"):
            assert f"twin/twin-{board}/{cls}" in proc.stdout
    assert bench.state["places"] == ["twin-1", "twin-2"]


def test_labgrid_client_drives_the_board_through_env_twin_yaml(bench, tmp_path):
    env_file = bench.env_file(tmp_path, board=2)
    assert client(env_file, "acquire").returncode == 0
    try:
        assert client(env_file, "power", "on").returncode == 0
        assert "power for place twin-2 is on" in client(env_file, "power", "get").stdout
        assert bench.board(2)["power"] is True and bench.board(1)["power"] is False
        assert client(env_file, "io", "high").returncode == 0
        assert bench.board(2)["maskrom_button"] is True
        client(env_file, "io", "low")
        assert client(env_file, "power", "off").returncode == 0
        assert bench.board(2)["mode"] == "off"
    finally:
        assert client(env_file, "release").returncode == 0


def test_place_held_by_someone_else_stops_the_suite_with_their_name(bench, tmp_path):
    env_file = bench.env_file(tmp_path, board=1)
    assert client(env_file, "acquire", user="other-lab-user").returncode == 0
    try:
        env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file),
                               str(REPO / "tests" / "test_boot.py"), "-q", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
        assert proc.returncode != 0
        assert "twin-1 is already acquired by" in proc.stderr + proc.stdout and "other-lab-user" in proc.stderr + proc.stdout
        assert bench.board(1)["power"] is False  # nothing touched the board
    finally:
        assert client(env_file, "release", user="other-lab-user").returncode == 0
