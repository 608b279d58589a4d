"""The bench as a labgrid lab: coordinator, exporter and places, used with labgrid-client
and by the suite, exactly through env/twin.yaml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from hil.lab import places
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


def _suite(bench, env_file, *args, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
    return subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file), *args, "-q",
                           "-p", "no:cacheprovider", f"--results={env_file.parent / 'results'}", "--history=none"],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)


def test_a_second_run_of_the_same_user_stops_naming_the_run_that_holds_the_place(bench, tmp_path):
    """labgrid locks a place per user; the suite locks it per run: two runs of one user on one
    board, the second stops before touching it and names the first, which goes on untouched. The
    first is kept busy by a soak, so that it surely holds the place while the second starts."""
    coordinator = bench.state["coordinator"]
    env_file = bench.env_file(tmp_path, board=1)
    env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
    first_dir = tmp_path / "first"
    first = subprocess.Popen([sys.executable, "-m", "pytest", "--lg-env", str(env_file), "-q", "-p",
                              "no:cacheprovider", "-k", "test_boots_to_shell or test_inference_soak",
                              "--soak-duration", "10m", f"--results={first_dir}", "--history=none"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        booted = first_dir / "latest" / "results.jsonl"
        while "test_boots_to_shell" not in (booted.read_text() if booted.exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not boot its board"
            time.sleep(0.5)
        holder = places.RunId.from_tag(places.places_info(coordinator)["twin-1"]["tags"][places.RunId.TAG])
        assert holder.pid == first.pid
        boots = bench.board(1)["boots"]
        second = _suite(bench, env_file, "-k", "test_boots_to_shell")
        out = second.stdout + second.stderr
        assert second.returncode == 4, out[-3000:]
        assert f"held by the run of pid {first.pid} on {places.labgrid_host()}, started" in out, out[-3000:]
        assert "release its stale lock: labgrid-client" in out
        assert bench.board(1)["boots"] == boots, "the second run touched the board"
        assert first.poll() is None, "the first run was still running all along"
        first.send_signal(signal.SIGINT)  # as Ctrl-C: it ends its soak and releases the place
        output, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 2, output[-3000:]
    assert "1 passed" in output and "test_boots_to_shell" not in output.split("short test summary")[-1], output[-3000:]
    assert bench.board(1)["boots"] == boots, "the first run's board was never rebooted under it"
    assert places.places_info(coordinator)["twin-1"]["acquired"] is None


def test_a_dead_runs_stale_lock_is_taken_over_and_named(bench, tmp_path):
    coordinator = bench.state["coordinator"]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a run that was killed: its pid is gone
    dead = places.RunId(host=places.labgrid_host(), pid=gone.pid, started=1)
    assert places.acquire(coordinator, "twin-2", dead) is None
    proc = _suite(bench, bench.env_file(tmp_path, board=2), str(REPO / "tests" / "test_boot.py"),
                  "-k", "test_boots_to_shell", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"took over the stale lock of the run of pid {gone.pid}" in out
    info = places.places_info(coordinator)["twin-2"]
    assert info["acquired"] is None and places.RunId.TAG not in info["tags"]  # released what it took over


def test_a_place_acquired_by_hand_is_not_shared_with_a_run(bench, tmp_path):
    env_file = bench.env_file(tmp_path, board=1)
    assert client(env_file, "acquire").returncode == 0
    boots, power = bench.board(1)["boots"], bench.board(1)["power"]
    try:
        proc = _suite(bench, env_file, str(REPO / "tests" / "test_boot.py"))
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "already acquired by you" in out and "by no run of this suite" in out, out[-3000:]
        assert (bench.board(1)["boots"], bench.board(1)["power"]) == (boots, power), "the run touched the board"
    finally:
        assert client(env_file, "release").returncode == 0


def test_a_run_between_acquire_and_tag_or_untag_and_release_is_waited_for(bench, tmp_path):
    """A run tags its place just after acquiring it and untags it just before releasing it; a
    second run that looks in between must wait the moment out, not call it a hand's lock."""
    coordinator = bench.state["coordinator"]
    env_file = bench.env_file(tmp_path, board=2)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    tagging = places.RunId(host=places.labgrid_host(), pid=other.pid, started=1)
    try:
        assert client(env_file, "acquire").returncode == 0  # acquired, not yet tagged
        later = threading.Timer(1.5, places._set_run_tag, (coordinator, "twin-2", tagging.tag))
        later.start()
        with pytest.raises(places.PlaceError, match=f"held by the run of pid {other.pid} on"):
            places.acquire(coordinator, "twin-2")
        later.join()
        places._set_run_tag(coordinator, "twin-2", "")  # untagged, not yet released
        later = threading.Timer(1.5, client, (env_file, "release"))
        later.start()
        assert places.acquire(coordinator, "twin-2") is None
        later.join()
        assert places.RunId.from_tag(places.places_info(coordinator)["twin-2"]["tags"][places.RunId.TAG]) \
            == places.RunId.this_process()
    finally:
        other.kill()
        places._set_run_tag(coordinator, "twin-2", "")
        client(env_file, "release")  # fails harmlessly when the place is free already
