"""The twin's faults for endurance tests, on real QEMU: the seeded ``boot-fail`` fault stops a boot
where it says, and the boots it makes fail are the ones ``GET /board/n`` lists; a panic that resets
the board leaves its ramoops record in /sys/fs/pstore for the next boot, and a power cut clears it.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from hil.rockchip import bootlog
from hil.twin.board import BootFail
from selftest.twin.conftest import run, ssh_client

LOGIN = r"myd-lr3576 login:"
# How long a boot that should not get somewhere is watched for it, once the step before it is done:
# on the twin a login prompt follows the end of rcS within a few tenths of a second, dropbear too.
ABSENT_S = 1.5


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=3)


@pytest.fixture(autouse=True)
def clear_faults(bench):
    yield
    bench.call("DELETE", "/fault/1")


def set_fault(bench, name: str, value: str, board: int = 1) -> None:
    status, body = bench.call("PUT", f"/fault/{board}/{name}", value.encode())
    assert status == 200, body


def power_cycle(bench, console_tap):
    bench.call("GET", "/outlet/1/0")
    tap = console_tap(bench.ports()["console"])
    bench.call("GET", "/outlet/1/1")
    return tap


def wait_mode(bench, mode: str, timeout: float = 30.0, board: int = 1) -> None:
    """Wait until the bench says the board is in ``mode`` ("running": the guest agent said hello at the end of rcS)."""
    deadline = time.monotonic() + timeout
    while (now := bench.board(board)["mode"]) != mode:
        assert time.monotonic() < deadline, f"board {board} still {now!r}, not {mode!r}, after {timeout} s"
        time.sleep(0.05)


def ssh_answers(bench, within: float, board: int = 1) -> bool:
    """Whether the board's SSH port sends an SSH banner within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", bench.ports(board)["ssh"]), timeout=1) as s:
                s.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
                if s.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)  # a refused connection returns at once: poll, do not spin
    return False


def failures(bench, board: int = 1) -> list[dict]:
    return bench.board(board)["boot_failures"]


def test_a_boot_failing_in_the_kernel_panics_before_any_init(bench, console_tap):
    bench.call("GET", "/outlet/1/0")
    set_fault(bench, "boot-fail", "100:kernel")
    tap = power_cycle(bench, console_tap)
    tap.wait_for(r"Kernel panic - not syncing: VFS: Unable to mount root fs", timeout=30)
    assert bootlog.parse(tap.text).boots[-1].stages == ["uboot", "kernel"], tap.text[-1500:]  # no init ran
    assert bench.board()["mode"] == "booting"  # no guest agent either
    assert failures(bench) == [{"boot": 1, "stage": "kernel"}]
    bench.call("GET", "/outlet/1/0")  # a kernel that panics with panic=0 spins: free the CPU


def test_boots_failing_in_user_space_stop_where_they_say(bench, console_tap):
    """init, network and npu on boards 1 to 3 at once (they differ only in the guest's scripts)."""
    stages = {1: "init", 2: "network", 3: "npu"}
    taps = {}
    for n, stage in stages.items():
        bench.call("GET", f"/outlet/{n}/0")
        set_fault(bench, "boot-fail", f"100:{stage}", board=n)
        taps[n] = console_tap(bench.ports(n)["console"])
    for n in stages:
        bench.call("GET", f"/outlet/{n}/1")
    try:
        # init: rcS runs to its end (the guest agent says hello), then no SSH and no login prompt
        taps[1].wait_for(r"Run /init as init process", timeout=60)
        wait_mode(bench, "running", board=1)
        assert not ssh_answers(bench, within=ABSENT_S, board=1)
        assert not re.search(LOGIN, taps[1].text), taps[1].text[-1500:]  # nor in that time on the console
        # network: the login prompt, but no SSH
        taps[2].wait_for(LOGIN, timeout=60)
        wait_mode(bench, "running", board=2)
        assert not ssh_answers(bench, within=ABSENT_S, board=2)
        # npu: SSH and all, but no rknpu driver
        taps[3].wait_for(LOGIN, timeout=60)
        client = ssh_client(bench, board=3, timeout=30)
        try:
            rc, out = run(client, "ls /sys/kernel/debug/rknpu/load /proc/rknpu 2>&1; grep -c rknpu /proc/modules; "
                                  "dmesg | grep boot-fail")
        finally:
            client.close()
        assert out.count("No such file or directory") == 2, out
        assert "\n0\n" in out and "rknpu.ko is not loaded this boot" in out, out
        for n, stage in stages.items():
            assert failures(bench, n) == [{"boot": 1, "stage": stage}]
    finally:
        for n in (2, 3):
            bench.call("DELETE", f"/fault/{n}")
            bench.call("GET", f"/outlet/{n}/0")


def test_the_seeded_draw_fails_the_boots_it_says_and_the_console_shows_them(bench, console_tap):
    value = "50:uboot"  # seed 1
    planned = BootFail.plan(value, 2)
    assert planned == [1]  # a failed boot, then a good one
    bench.call("GET", "/outlet/1/0")
    set_fault(bench, "boot-fail", value)
    seen = []
    for n in (1, 2):
        tap = power_cycle(bench, console_tap)
        # a failed boot ends in U-Boot's refusal of the kernel, a good one at the login prompt
        tap.wait_for(rf"Bad Linux ARM64 Image magic|{LOGIN}", timeout=30)
        boot = bootlog.parse(tap.text).boots[-1]
        if boot.last_stage == "uboot":
            assert "Booting Linux" not in tap.text and "Starting kernel" not in tap.text
            seen.append(n)
        else:
            assert boot.stages == ["uboot", "kernel", "init", "login"], tap.text[-1500:]
    board = bench.board()
    assert seen == planned
    assert board["boot_failures"] == [{"boot": n, "stage": "uboot"} for n in planned]
    assert board["boot_fail_boots"] == 2
    bench.call("DELETE", "/fault/1/boot-fail")
    assert bench.board()["boot_failures"] == board["boot_failures"]  # still there to compare after a clear


def test_a_panic_that_resets_leaves_its_ramoops_record_until_the_power_goes(bench, console_tap):
    ram = bench.config.state_dir / "board-1" / "dram"
    tap = power_cycle(bench, console_tap)
    wait_mode(bench, "running")  # the guest agent is there to be told
    boots = bench.board()["boots"]
    mark = tap.mark()
    set_fault(bench, "kernel-panic", "reset")
    tap.wait_for(r"Kernel panic - not syncing: sysrq triggered crash", timeout=20, start=mark)
    tap.wait_for(r"U-Boot 20\d\d", timeout=20, start=mark)  # the kernel reset the board by itself
    tap.wait_for(LOGIN, timeout=30, start=mark)
    assert bench.board()["boots"] == boots + 1 and bench.call("GET", "/outlet/1")[1] == b"1"
    assert ram.stat().st_size == 2304 * 1024 * 1024  # RAM kept through the reset
    client = ssh_client(bench, timeout=30)
    try:
        rc, out = run(client, "ls -A /sys/fs/pstore; cat /sys/fs/pstore/dmesg-ramoops-0")
    finally:
        client.close()
    assert rc == 0 and out.startswith("dmesg-ramoops-0\n"), out
    assert "Kernel panic - not syncing: sysrq triggered crash" in out, out

    bench.call("GET", "/outlet/1/0")
    assert not ram.exists()  # the power went: so did RAM
    mark = tap.mark()
    bench.call("GET", "/outlet/1/1")
    tap.wait_for(LOGIN, timeout=30, start=mark)
    client = ssh_client(bench, timeout=30)
    try:
        rc, out = run(client, "mount | grep -c ' /sys/fs/pstore type pstore '; ls -A /sys/fs/pstore | wc -l; "
                              "grep ' : System RAM' /proc/iomem; grep ramoops /proc/iomem; grep MemTotal /proc/meminfo; "
                              "dmesg | grep -E 'ramoops|pstore'")
    finally:
        client.close()
    assert out.split()[:2] == ["1", "0"], out  # pstore mounted, and empty after the power cut
    # the kernel sees the 2 GiB at 0x40000000 as before (mem=2048M; MemTotal 2030456 kB with Debian's
    # 6.1.0-57, before and after), ramoops has the first MiB above it
    assert "40000000-bfffffff : System RAM" in out and re.search(r"(?m)^c0000000-\w+ : ramoops:dmesg", out), out
    mem_kb = int(out.split("MemTotal:")[1].split()[0])
    assert 1_900_000 < mem_kb <= 2 * 1024 * 1024, out
    assert "ramoops: using 0x100000@0xc0000000" in out and "Registered ramoops as persistent store backend" in out, out
