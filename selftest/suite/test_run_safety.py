"""A run never hangs, never leaves the lab dirty, and names what happened to the board.

Each case runs the real suite in a subprocess against a real twin and acts on it while it
runs: a fault switched on, a signal sent.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from hil.lab import places

from selftest.suite.conftest import after_test
from selftest.twin.conftest import run, ssh_client

TIMESCALE = 0.1
GOVERNORS = ("cat /sys/class/devfreq/27700000.npu/governor /sys/class/devfreq/dmc/governor "
             "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor "
             "/sys/devices/system/cpu/cpufreq/policy4/scaling_governor")
LOCK_IN_PLACE = 3.0  # s after test_frequencies ends: the inference fixtures have locked the clocks


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=1, timescale=TIMESCALE)


def _governors(bench) -> list[str]:
    client = ssh_client(bench)
    try:
        rc, out = run(client, GOVERNORS)
        assert rc == 0, out
        return out.split()
    finally:
        client.close()


def test_a_spontaneous_reboot_mid_run_is_named(bench, run_suite):
    try:
        result = run_suite(bench, "--image", "twin-good", "--no-flash", "-k",
                           "test_boot or test_deploy or test_frequencies or test_text",
                           during=after_test("test_lock_and_restore", 0.0,
                                         lambda proc: bench.call("PUT", "/fault/1/spontaneous-reboot", b"0.5")))
    finally:
        bench.call("DELETE", "/fault/1/spontaneous-reboot")
    assert result.returncode != 0
    failed = list(result.failed())  # in the order they ran
    assert failed, "nothing failed although the board rebooted mid-run"
    first = result.message(failed[0])
    assert "the board rebooted during this test" in first and "U-Boot 20" in first, first[-2000:]
    for case in failed[1:]:  # the board kept rebooting (the fault re-arms at each power-on)
        message = result.message(case)
        assert "the board rebooted during this test" in message or "[the board rebooted during tests/" in message, \
            (case, message[-1500:])
    assert "lost: the board or the network closed it" in first  # what it looked like before


def test_sigterm_mid_run_ends_like_ctrl_c(bench, run_suite):
    """CI cancels with SIGTERM: results and JUnit written, clocks restored, place released."""
    result = run_suite(bench, "--image", "twin-good", "--no-flash",
                       during=after_test("test_lock_and_restore", LOCK_IN_PLACE,
                                     lambda proc: proc.send_signal(signal.SIGTERM)))
    assert result.returncode == 2, result.output[-3000:]  # pytest's "interrupted"
    assert "KeyboardInterrupt" in result.output and "stopped by SIGTERM" in result.output
    assert result.outcome("test_frequencies.py::test_lock_and_restore") == "passed"
    info = (result.run_dir / "run.json").read_text()
    assert '"finished": null' not in info, "run.json was not closed"
    assert (result.run_dir / "report.html").exists()
    assert places.places_info(bench.state["coordinator"])["twin-1"]["acquired"] is None, "place left acquired"
    assert "userspace" not in _governors(bench), "the clocks were left locked"


def test_kill_9_mid_run_is_cleaned_up_by_the_next_run(bench, run_suite):
    """kill -9 leaves the place held and the clocks locked; the next run takes the place over,
    says so, and leaves the board with its clocks free and the place released (its boot resets
    the clocks: a board is always power-cycled before a run uses it)."""
    killed = {}

    def kill(proc):
        killed["pid"] = proc.pid
        os.kill(proc.pid, signal.SIGKILL)

    first = run_suite(bench, "--image", "twin-good", "--no-flash", junit=False,
                      during=after_test("test_lock_and_restore", LOCK_IN_PLACE, kill))
    assert first.returncode == -signal.SIGKILL
    held = places.places_info(bench.state["coordinator"])["twin-1"]
    assert held["acquired"] and held["tags"].get(places.RunId.TAG, "").startswith(f"{killed['pid']}_")
    assert "userspace" in _governors(bench), "the killed run had not locked the clocks yet: the test proves nothing"

    second = run_suite(bench, "--image", "twin-good", "--no-flash", "-k", "test_boots_to_shell or test_lock_and_restore")
    assert second.returncode == 0, second.output[-3000:]
    assert f"took over the stale lock of the run of pid {killed['pid']}" in second.output
    assert places.places_info(bench.state["coordinator"])["twin-1"]["acquired"] is None
    assert "userspace" not in _governors(bench)


def test_a_pdu_that_never_answers_is_a_named_lab_fault_not_a_hang(bench, run_suite):
    bench.call("PUT", "/fault/1/pdu-hang", b"1")
    try:
        result = run_suite(bench, "--image", "twin-good", "--no-flash", "-k", "test_boot or test_platform",
                           timeout=240)
    finally:
        bench.call("DELETE", "/fault/1/pdu-hang")
    assert result.returncode == 2, result.output[-3000:]  # nothing qualified: never a success
    port = bench.config.base_port
    cause = f"lab fault (PDU): the PDU at 127.0.0.1:{port} did not answer within"
    assert cause in result.output
    assert result.outcome("test_boot.py::test_boots_to_shell") == "skipped"
    assert cause in result.message("test_boot.py::test_boots_to_shell")
    assert not result.failed(), "a lab fault made a test fail"
    records = [json.loads(line) for line in (result.run_dir / "results.jsonl").read_text().splitlines()]
    assert any(r["type"] == "lab_fault" and cause in r["message"] for r in records)
    assert "LAB-FAULT" in (result.run_dir / "report.html").read_text()
