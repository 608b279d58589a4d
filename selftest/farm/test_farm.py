"""The suite on a farm: two twin boards published as places by a real labgrid coordinator and
exporter, driven by pytest-xdist workers, in shard and fan-out mode, with a place held by
someone else and boards that fail their health check."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hil.paths import REPO, twin_dir
from hil.twin.vision import VISION_MODELS
from selftest.farm.conftest import boots, collected, flash, held

SUBSET = ("tests/test_boot.py", "tests/test_npu_stack.py", "tests/test_config.py")


def client_as(bench, user: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0", "LG_USERNAME": user}
    return subprocess.run([sys.executable, "-m", "labgrid.remote.client", "-x", bench.state["coordinator"], *args],
                          capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_place_held_by_someone_else_stops_the_run_with_their_name(bench, run_farm):
    assert client_as(bench, "other-lab-user", "-p", "twin-2", "acquire").returncode == 0
    try:
        before = boots(bench)
        run = run_farm(bench, "--places", "twin-1,twin-2", "tests/test_boot.py")
        assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output[-3000:]
        assert "twin-2 is already acquired by" in run.output and "other-lab-user" in run.output, run.output[-3000:]
        assert "labgrid-client -p twin-2 release" in run.output  # what to do about it
        assert set(held(bench)) == {"twin-2"}, "the run kept twin-1 after giving up"
        assert boots(bench) == before, "a board was booted although the run could not have all its places"
        status = subprocess.run([sys.executable, "-m", "hil.farm", "status"], capture_output=True, text=True,
                                timeout=60, env={**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)})
        assert status.returncode == 0, status.stderr
        assert "place twin-1: tags board=rk3576 twin=1, free" in status.stdout
        assert "place twin-2: tags board=rk3576 twin=2, held by" in status.stdout and "other-lab-user" in status.stdout
        assert f"--lg-coordinator {bench.state['coordinator']} --places twin-1,twin-2 --dist each" in status.stdout
        up = subprocess.run([sys.executable, "-m", "hil.farm", "up"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)})
        assert up.returncode == 0 and "bench already running" in up.stdout, up.stdout + up.stderr
    finally:
        assert client_as(bench, "other-lab-user", "-p", "twin-2", "release").returncode == 0


def test_no_healthy_place_qualifies_nothing_and_says_why(bench, run_farm):
    run = run_farm(bench, "--places", "twin-1,twin-2", "--health-timeout", "1", *SUBSET)
    assert run.returncode == pytest.ExitCode.INTERRUPTED, run.output[-3000:]
    assert run.cases == [], "tests ran although no board passed its health check"
    for place in ("twin-1", "twin-2"):
        assert "did not finish within 1 s" in run.suite_properties[f"lab_fault.{place}"]
        assert any(r["type"] == "lab_fault" and r["board"] == place for r in run.records)
    assert "no place passed its health check" in run.output
    assert held(bench) == {}


def test_shard_splits_the_whole_suite_over_both_boards(bench, run_farm):
    before = boots(bench)
    run = run_farm(bench, "--places", "twin-1,twin-2", "tests")
    assert run.failed() == {}, f"failures in shard mode:\n{run.failed()}\n{run.output[-3000:]}"
    assert run.returncode == 0, run.output[-3000:]
    tests = [c["test"] for c in run.cases]
    assert sorted(tests) == sorted(collected("tests")), "not every test ran exactly once"
    boards = run.by_board()
    assert set(boards) == {"twin-1", "twin-2"}, f"boards used: {sorted(boards)}"
    assert run.suite_properties["farm.mode"] == "shard"
    # the tests that read one demo session ran where that session ran, once
    for module in ("test_multimodal.py", "test_text_inference.py"):
        where = {c["board"] for c in run.cases if c["test"].startswith(module)}
        assert len(where) == 1, f"{module} was split over {where}"
    for model in VISION_MODELS:  # and the tests of one vision model, which read its rknn_benchmark runs
        where = {c["board"] for c in run.cases if c["test"].startswith("test_vision.py") and f"[{model}" in c["test"]}
        assert len(where) == 1, f"the tests of {model} were split over {where}"
    # each board: its own console log, its own boots, its own result records
    for n, place in ((1, "twin-1"), (2, "twin-2")):
        assert "login:" in run.console(place) and "root@myd-lr3576" in run.console(place)
        assert boots(bench)[n] > before[n]
    # figures reach the JUnit file under xdist, as per-test properties with their board
    perf = next(c for c in run.cases if c["test"] == "test_text_inference.py::test_text_performance")
    assert float(perf["properties"]["text_decode_tokens_per_s"]) > 10 and perf["properties"]["board"] == perf["board"]
    assert perf["properties"]["text_decode_tokens_per_s.n"] == "5"
    tests_by_record = {r["board"] for r in run.records if r["type"] == "test"}
    assert tests_by_record == {"twin-1", "twin-2"}
    assert len([r for r in run.records if r["type"] == "test"]) == len(tests)
    assert held(bench) == {}


@pytest.fixture
def board_2_cannot_log_in(bench):
    flash(bench, 2, "twin-no-login")
    yield
    flash(bench, 2, "twin-good")


def test_fan_out_by_tags_leaves_a_board_that_cannot_log_in_out_as_a_lab_fault(bench, run_farm,
                                                                               board_2_cannot_log_in):
    """Two places chosen by their tags, every test on every board that passes its health check:
    the board that cannot log in is a lab fault, the other runs everything."""
    # each of the sick board's attempts waits the whole login_timeout: kept short here (the twin's
    # boots reach the prompt in about 10 s at this time scale), as is the number of attempts
    run = run_farm(bench, "--place-tags", "board=rk3576", "-n", "2", "--dist", "each", *SUBSET,
                   env_edits=[("login_timeout: 30\n        await_login_timeout: 1",
                               "login_timeout: 20\n        await_login_timeout: 1"),
                              ("boot_attempts: 3", "boot_attempts: 2")])
    assert run.returncode == 0, f"a lab fault must not fail the run:\n{run.output[-3000:]}"
    assert run.suite_properties["farm.mode"] == "fan-out"
    fault = run.suite_properties["lab_fault.twin-2"]
    assert "did not reach shell in 2 attempts" in fault, fault
    assert "lab_fault.twin-1" not in run.suite_properties
    records = [r for r in run.records if r["type"] == "lab_fault"]
    assert [r["board"] for r in records] == ["twin-2"]
    assert "no login prompt or shell prompt on the console" in records[0]["message"]
    assert "--- last console lines ---" in records[0]["message"]
    assert "twin-2: LAB FAULT" in run.output
    # the healthy board's results are complete, and nothing ran on the sick one
    assert run.by_board() == {"twin-1": run.by_board()["twin-1"]}
    assert sorted(run.by_board()["twin-1"]) == sorted(collected(*SUBSET))
    assert run.failed() == {}
    assert "Run /init as init process" in run.console("twin-2")  # the health check's boot, kept for the lab
    assert held(bench) == {}
    out = client_as(bench, "hil-selftest", "reservations")
    assert out.returncode == 0 and "Reservation '" not in out.stdout, f"the run left its reservations behind:\n{out.stdout}"


def test_one_place_from_lg_place_runs_in_one_process(bench, run_farm):
    run = run_farm(bench, "tests/test_boot.py", env={"LG_PLACE": "twin-2"})
    assert run.returncode == 0, run.output[-3000:]
    assert run.suite_properties["farm.mode"] == "single"
    assert sorted(run.by_board()["twin-2"]) == sorted(collected("tests/test_boot.py"))
    assert set(run.by_board()) == {"twin-2"}
    assert "root@myd-lr3576" in run.console("twin-2") and run.console("twin-1") == ""
    assert "bringing up nodes" not in run.output  # no xdist
    assert held(bench) == {}


def test_farm_up_starts_a_bench_and_says_how_to_run_the_suite_on_it(twin_images, tmp_path):
    from hil.twin import bench as benchmod

    base = benchmod.free_base_port(24500)
    env = {**os.environ, "HIL_BENCH_DIR": str(tmp_path / "bench")}
    try:
        up = subprocess.run([sys.executable, "-m", "hil.farm", "up", "--boards", "2", "--base-port", str(base),
                             "--timescale", "0.1"], capture_output=True, text=True, timeout=120, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "bench up:" in up.stdout and f"labgrid coordinator 127.0.0.1:{base + 1}" in up.stdout
        assert "place twin-2: tags board=rk3576 twin=2, free" in up.stdout
        assert (f"pytest --lg-env env/farm.yaml --lg-coordinator 127.0.0.1:{base + 1} --places twin-1,twin-2 tests"
                in up.stdout)
    finally:
        assert benchmod.down(tmp_path / "bench"), "hil farm up left no bench to stop"


def test_fan_out_flashes_both_boards_of_one_host_through_the_real_rkdeveloptool(bench, run_farm, tmp_path):
    """Two xdist workers flash the two boards of this host at once with Debian's rkdeveloptool,
    which cannot pick a device: the host's flash lock makes them take turns, each checks that the
    one device it sees is its own board, and each board boots the image written to it."""
    before = {n: bench.board(n)["rockusb_sectors_written"] for n in (1, 2)}
    image = twin_dir() / "images" / "twin-rkllm-1.3.0.img"
    run = run_farm(bench, "--dist", "each", "--image", "twin-rkllm-1.3.0", "tests/test_platform.py",
                   env={"HIL_LOCK_DIR": str(tmp_path / "locks"), "LG_PLACES": "twin-1,twin-2"},
                   env_edits=[("      TwinFlashDriver: {}\n",
                               "      RKDeveloptoolDriver: {loader_image: twin_loader, storage: null}\n"),
                              ("imports:\n", f"images:\n  twin_loader: {REPO}/images/loader/"
                                             "rk3576_spl_loader_twin.bin\nimports:\n")])
    assert run.returncode == 0 and run.failed() == {}, run.output[-3000:]
    assert run.suite_properties["farm.mode"] == "fan-out"
    wanted = sorted(collected("tests/test_platform.py"))
    assert {place: sorted(tests) for place, tests in run.by_board().items()} == {"twin-1": wanted, "twin-2": wanted}
    for place in ("twin-1", "twin-2"):
        case = next(c for c in run.cases if c["test"] == "test_platform.py::test_build_info_matches_image"
                    and c["board"] == place)
        assert case["outcome"] == "passed"
        assert len([r for r in run.records if r["type"] == "test" and r["board"] == place]) == len(wanted)
    sectors = -(-image.stat().st_size // 512)
    for n in (1, 2):
        assert bench.board(n)["image"] == "twin-rkllm-1.3.0"
        assert bench.board(n)["rockusb_sectors_written"] - before[n] == sectors, f"board {n}: not the real tool"
