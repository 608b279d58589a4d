"""hil.suite.stress: the devfreq stepping loop run under the host's busybox on a devfreq tree laid
out as the board's, and the verdicts made of the tools' real output."""

from __future__ import annotations

import subprocess

import pytest

from hil.paths import REPO
from hil.rockchip.stress import memtester_runs, parse_stressapptest
from hil.suite.stress import StressResult, restore_command, stepper_command
from selftest.unit.localboard import BUSYBOX, DEVFREQ, write_surface
from selftest.unit.test_stress import (ISSUE71_ARM_MISCOMPARES, ISSUE117_PROCEDURAL, LIMA_ARM_FAIL,
                                      OK3576_ROCKCHIP_PASS, OSISM_PASS)

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the board's shell) on the host")


def test_the_stepper_walks_npu_and_ddr_through_their_operating_points_and_the_governors_go_back(tmp_path):
    surface = write_surface(tmp_path)
    root = str(tmp_path / "sys/class/devfreq")
    out = subprocess.run([BUSYBOX, "sh", "-c", stepper_command(step_s=0.1, duration_s=2, root=root)],
                         capture_output=True, text=True, timeout=30).stdout
    governors = dict(line.split()[1:3] for line in out.splitlines() if line.startswith("@governor "))
    assert governors == {"27700000.npu": "rknpu_ondemand", "dmc": "dmc_ondemand"}
    steps = [line.split()[1:] for line in out.splitlines() if line.startswith("@step ")]
    npu = [int(hz) for node, hz in steps if node == "27700000.npu"]
    opps = [mhz * 1_000_000 for mhz in DEVFREQ["27700000.npu"][2]]
    assert npu[:len(opps)] == opps[:len(npu)] and len(npu) >= 4, "one operating point after another"
    assert {int(hz) for node, hz in steps if node == "dmc"} <= {mhz * 1_000_000 for mhz in DEVFREQ["dmc"][2]}
    assert surface.read("sys/class/devfreq/dmc/governor").strip() == "userspace"
    subprocess.run([BUSYBOX, "sh", "-c", restore_command(governors, root=root)], check=True, timeout=30)
    assert surface.read("sys/class/devfreq/dmc/governor").strip() == "dmc_ondemand"
    assert surface.read("sys/class/devfreq/27700000.npu/governor").strip() == "rknpu_ondemand"


def test_the_verdicts_of_real_runs():
    clean = StressResult(stressapptest=parse_stressapptest(OSISM_PASS), memtester=memtester_runs(OK3576_ROCKCHIP_PASS))
    assert clean.stressapptest_faults == 0 and clean.memtester_failures == 0
    bad = StressResult(stressapptest=parse_stressapptest(ISSUE117_PROCEDURAL), memtester=memtester_runs(LIMA_ARM_FAIL))
    assert bad.memtester_failures > 0
    assert bad.stressapptest_faults == 1, "a FAIL with no counted incident still counts"
    cut = StressResult(stressapptest=parse_stressapptest(ISSUE71_ARM_MISCOMPARES))
    assert cut.stressapptest_faults is None, "miscompares without a Status line: no verdict, not a pass"


STANDIN = REPO / "hil/twin/guest/rootfs/usr/bin/stressapptest"


def test_the_twin_s_stressapptest_prints_what_the_real_one_does():
    out = subprocess.run([BUSYBOX, "sh", str(STANDIN), "-s", "2", "-M", "8", "-W", "--printsec", "1"],
                         capture_output=True, text=True, timeout=30).stdout
    run = parse_stressapptest(out)
    assert run["status"] == "PASS" and run["complete"] and run["hardware_incidents"] == 0 and run["errors"] == 0
    assert run["target_mb"] == 8 and run["target_seconds"] == 2 and run["completed_mb"] > 0
    assert "Log: Seconds remaining: 1" in out


def test_the_twin_s_stressapptest_stopped_early_says_so_as_the_real_one_does():
    proc = subprocess.Popen([BUSYBOX, "sh", str(STANDIN), "-s", "30", "-M", "8", "--printsec", "1"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("Log: Commandline - ")
    for line in proc.stdout:
        if line.startswith("Log: Seconds remaining"):
            break
    proc.terminate()
    out = proc.communicate(timeout=30)[0]
    run = parse_stressapptest(out)
    assert run["exited_early"] and run["status"] == "PASS", out
