"""The guest's fault script (hil/twin/guest/rootfs/usr/libexec/twin/fault) under the host's
busybox, in a fake root (``TWIN_ROOT``): the npu-heating fault's onset timer.

npu-heating SECONDS writes the thermal-throttle fault file once the NPU has been busy SECONDS
seconds since the fault was set (the busy time the twin's rknpu module counts in
/sys/module/rknpu/parameters/twin_busy_ms, which these tests write); a clear stops the timer and
removes the throttle it caused. The timer reads the count five times a second; the tests wait
for conditions by polling against a deadline, never for a fixed time.
(demo-leak, the other soak fault, is in test_standins.py: it lives in the demo stand-in.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hil.rockchip import rknpu

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")

FAULT = Path(__file__).resolve().parents[2] / "hil/twin/guest/rootfs/usr/libexec/twin/fault"


class Guest:
    """A fake guest root with the rknpu module's busy count and the fault directory."""

    def __init__(self, root: Path):
        self.root = root
        self.faults = root / "run/twin/fault"
        self.busy_file = root / "sys/module/rknpu/parameters/twin_busy_ms"
        self.busy_file.parent.mkdir(parents=True)
        self.busy_ms(0)

    def busy_ms(self, ms: int) -> None:
        """The NPU's busy time since the module loaded, as the module shows it."""
        tmp = self.busy_file.with_suffix(".tmp")
        tmp.write_text(f"{ms}\n")
        tmp.replace(self.busy_file)  # the timer never reads half a number

    def fault(self, *args: str) -> None:
        """What the agent runs for a line from the bench: fault NAME VALUE, clear [NAME]."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TWIN_ROOT": str(self.root)}
        p = subprocess.run([BUSYBOX, "sh", str(FAULT), *args], env=env, capture_output=True, timeout=10)
        assert p.returncode == 0, p.stderr.decode()

    @property
    def throttle(self) -> Path:
        return self.faults / "thermal-throttle"

    def timer_pid(self) -> int | None:
        path = self.root / "run/twin/npu-heating.pid"
        return int(path.read_text()) if path.exists() else None

    def timer_started(self) -> None:
        """Wait until the timer has read the busy count it counts from (it then writes its state):
        busy time written before that would be taken as the start."""
        wait_for(lambda: self.state() is not None, 10, "the timer's first state")

    def state(self) -> tuple[int, int, int] | None:
        """(ms busy, ms needed, ticks) as the timer last wrote them."""
        try:
            busy, need, elapsed = map(int, (self.root / "run/twin/npu-heating.state").read_text().split())
        except (FileNotFoundError, ValueError):
            return None
        return busy, need, elapsed


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)  # polling interval, not a wait standing in for the condition


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.fixture
def guest(tmp_path):
    g = Guest(tmp_path / "root")
    yield g
    g.fault("clear")  # never leave a timer behind


def test_npu_heating_trips_after_its_seconds_under_load(guest):
    guest.busy_ms(5000)  # busy before the fault was set: no heat of this fault
    guest.fault("fault", "npu-heating", "2.5")
    assert (guest.faults / "npu-heating").read_text() == "2.5\n"
    assert not guest.throttle.exists()
    pid = guest.timer_pid()
    assert pid and alive(pid)
    wait_for(lambda: (guest.state() or (0, 0, 0))[2] >= 2, 10, "two ticks of the timer")
    assert guest.state()[:2] == (0, 2500) and not guest.throttle.exists()
    guest.busy_ms(7499)
    wait_for(lambda: (guest.state() or (0,))[0] == 2499, 10, "the timer reading the busy time")
    assert not guest.throttle.exists(), "tripped 1 ms early"
    guest.busy_ms(7500)
    wait_for(guest.throttle.exists, 10, "the thermal-throttle fault file")
    assert guest.throttle.read_text() == "npu-heating\n"
    assert guest.state()[:2] == (2500, 2500)
    wait_for(lambda: not alive(pid), 5, "the timer ending once it has tripped")
    # clearing the fault removes the throttle it caused
    guest.fault("clear", "npu-heating")
    assert not guest.throttle.exists() and not (guest.faults / "npu-heating").exists()


def test_idle_time_does_not_count(guest):
    guest.busy_ms(1200)
    guest.fault("fault", "npu-heating", "1")
    wait_for(lambda: (guest.state() or (0, 0, 0))[2] >= 3, 10, "three ticks of the timer")
    assert guest.state()[0] == 0, "an idle NPU does not heat the SoC"
    assert not guest.throttle.exists()
    guest.busy_ms(2200)
    wait_for(guest.throttle.exists, 10, "the trip once the NPU has been busy 1 s")
    busy, need, ticks = guest.state()
    assert busy == need == 1000 and ticks >= 4


def test_zero_trips_at_the_first_busy_moment(guest):
    guest.fault("fault", "npu-heating", "0")
    wait_for(lambda: (guest.state() or (0, 0, 0))[2] >= 2, 10, "two ticks of the timer")
    assert not guest.throttle.exists(), "0 s under load is not 0 s idle"
    guest.busy_ms(1)
    wait_for(guest.throttle.exists, 10, "the trip at the first busy millisecond")


@pytest.mark.parametrize("clear", [("clear", "npu-heating"), ("clear",)])
def test_clear_cancels_the_onset(guest, clear):
    guest.fault("fault", "npu-heating", "2")
    pid = guest.timer_pid()
    guest.fault(*clear)
    # the script waits for its timer to end; the timer is the only writer of the throttle file
    assert not alive(pid)
    assert guest.timer_pid() is None
    assert not guest.throttle.exists() and not (guest.faults / "npu-heating").exists()


def test_clear_keeps_a_thermal_throttle_set_on_its_own(guest):
    guest.fault("fault", "thermal-throttle", "1")
    guest.fault("fault", "npu-heating", "1")
    pid = guest.timer_pid()
    guest.timer_started()
    guest.busy_ms(1000)
    wait_for(lambda: not alive(pid), 10, "the timer tripping")
    assert guest.throttle.read_text() == "1\n", "the trip leaves the fault set on its own alone"
    guest.fault("clear", "npu-heating")
    assert guest.throttle.read_text() == "1\n"
    guest.fault("clear", "thermal-throttle")
    assert not guest.throttle.exists()


def test_setting_it_again_starts_over(guest):
    guest.fault("fault", "npu-heating", "1")
    guest.timer_started()
    guest.busy_ms(1000)
    wait_for(guest.throttle.exists, 10, "the first trip")
    first = guest.timer_pid()
    guest.fault("fault", "npu-heating", "30")
    assert not guest.throttle.exists(), "a cool SoC again: its own throttle goes"
    second = guest.timer_pid()
    assert second and second != first and alive(second)
    assert (guest.faults / "npu-heating").read_text() == "30\n"
    guest.timer_started()
    assert guest.state()[:2] == (0, 30000), "counted from the busy time when set again"


NPU = FAULT.parent / "npu"


def test_npu_timeout_makes_every_job_log_the_drivers_timeout_and_soft_reset(guest):
    """npu-timeout: the NPU helper the stand-ins call at each job writes the vendor driver's
    recovery lines to the kernel log, which the suite's console scan names as NPU resets."""
    kmsg = guest.root / "dev/kmsg"
    kmsg.parent.mkdir(parents=True)
    kmsg.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TWIN_ROOT": str(guest.root)}

    def job():
        p = subprocess.run([BUSYBOX, "sh", str(NPU), "busy", "90", "88"], env=env, capture_output=True, timeout=10)
        assert p.returncode == 0, p.stderr.decode()

    job()
    assert kmsg.read_text() == "" and (guest.root / "sys/module/rknpu/parameters/twin_load").read_text() == "90 88\n"
    guest.fault("fault", "npu-timeout")
    job()
    job()
    lines = kmsg.read_text().splitlines()
    assert [f.kind for f in rknpu.scan_console("\n".join(lines))] == ["npu_reset"] * 4, lines
    assert lines[0].startswith("<3>RKNPU: job timeout, flags: 0x0,") and lines[1] == "<6>RKNPU: soft reset"
    guest.fault("clear", "npu-timeout")
    job()
    assert len(kmsg.read_text().splitlines()) == 4
