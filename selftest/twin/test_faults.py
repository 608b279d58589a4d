"""Run-time faults of the bench, each switched on through `hil twin fault` or the HTTP API
and observed from outside the board: on its console, its SSH port, its outlet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import paramiko

import pytest

from selftest.twin.conftest import run, ssh_client, wait_in_guest


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=1)


def power_cycle(bench, tap_factory):
    bench.call("GET", "/outlet/1/0")
    tap = tap_factory(bench.ports()["console"])
    bench.call("GET", "/outlet/1/1")
    return tap


def boot(bench, tap_factory):
    """Power-cycle and wait for the login prompt; returns the console tap."""
    tap = power_cycle(bench, tap_factory)
    tap.wait_for(r"login:", timeout=30)
    return tap


def hil(bench, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(autouse=True)
def clear_faults(bench):
    yield
    bench.call("DELETE", "/fault/1")


def test_fault_cli_rejects_unknown_fault(bench):
    proc = hil(bench, "twin", "fault", "1", "meteor-strike")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    status, body = bench.call("PUT", "/fault/1/meteor-strike", b"1")
    assert status == 409 and b"unknown fault" in body


def test_boot_hang_gives_a_silent_console(bench, console_tap):
    assert hil(bench, "twin", "fault", "1", "boot-hang").returncode == 0
    tap = power_cycle(bench, console_tap)
    with pytest.raises(AssertionError, match="not seen"):
        tap.wait_for(r"U-Boot", timeout=4)  # a booting board prints its banner within ~1 s
    assert bench.call("GET", "/outlet/1")[1] == b"1"
    assert hil(bench, "twin", "fault", "1", "clear").returncode == 0
    tap = power_cycle(bench, console_tap)
    tap.wait_for(r"myd-lr3576 login:", timeout=30)


def test_kernel_panic_at_run_time(bench, console_tap):
    tap = boot(bench, console_tap)
    mark = tap.mark()
    bench.call("PUT", "/fault/1/kernel-panic", b"1")
    tap.wait_for(r"Kernel panic - not syncing", timeout=20, start=mark)


def test_ssh_down_and_back(bench, console_tap):
    boot(bench, console_tap)
    ssh_client(bench).close()
    bench.call("PUT", "/fault/1/ssh-down", b"1")
    deadline = time.monotonic() + 15
    while True:  # the guest applies the fault asynchronously: wait until SSH is refused
        try:
            with socket.create_connection(("127.0.0.1", bench.ports()["ssh"]), timeout=2) as s:
                s.settimeout(2)
                banner = s.recv(64)
        except OSError:
            banner = b""
        if not banner.startswith(b"SSH-"):
            break
        assert time.monotonic() < deadline, "SSH still answers 15 s after the ssh-down fault"
        time.sleep(0.2)
    with pytest.raises((OSError, paramiko.SSHException)):
        ssh_client(bench, timeout=3)  # and it stays down
    bench.call("DELETE", "/fault/1/ssh-down")
    client = ssh_client(bench, timeout=30)
    assert run(client, "echo back")[1].strip() == "back"
    client.close()


def test_serial_garbage(bench, console_tap):
    """Line noise lands between the console's chunks, so any console pattern may be split by it:
    the board's health is judged over SSH, and the noise is counted on the console."""
    bench.call("PUT", "/fault/1/serial-garbage", b"100")
    tap = power_cycle(bench, console_tap)
    client = ssh_client(bench, timeout=60)
    assert run(client, "echo up")[1].strip() == "up"
    client.close()
    text = tap.text
    noise = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\r\n\t\x1b"))
    assert noise > 10, f"expected line noise on the console, found {noise} odd characters in {len(text)} characters"


def test_spontaneous_reboot(bench, console_tap):
    tap = boot(bench, console_tap)
    mark = tap.mark()
    bench.call("PUT", "/fault/1/spontaneous-reboot", b"2")
    tap.wait_for(r"U-Boot 20\d\d", timeout=15, start=mark)
    boots = json.loads(bench.call("GET", "/board/1")[1])["boots"]
    assert boots >= 2


def test_userdata_full(bench, console_tap):
    boot(bench, console_tap)
    client = ssh_client(bench)
    try:
        bench.call("PUT", "/fault/1/userdata-full", b"1")
        wait_in_guest(client, "[ -e /run/twin/fault/userdata-full ]", timeout=60)
        rc, out = run(client, "df /userdata | awk 'NR==2{print $4}'; dd if=/dev/zero of=/userdata/x bs=1M count=8")
        assert rc != 0 and "No space left on device" in out, out
        assert out.split()[0] == "0"  # df: nothing available
        bench.call("DELETE", "/fault/1/userdata-full")
        wait_in_guest(client, "[ ! -e /run/twin/fault/userdata-full ]")
        rc, out = run(client, "rm -f /userdata/x; dd if=/dev/zero of=/userdata/x bs=1M count=8 && rm /userdata/x")
        assert rc == 0, out
    finally:
        client.close()


@pytest.mark.parametrize("fault,value", [("decode-slow", "5"), ("oom-kill", "1"), ("thermal-throttle", "1")])
def test_guest_faults_reach_the_guest(bench, console_tap, fault, value):
    """Faults the inference stand-ins and the SoC surface act on arrive in the guest, and
    survive a reboot (the bench re-sends them when the guest agent starts)."""
    boot(bench, console_tap)
    client = ssh_client(bench)
    bench.call("PUT", f"/fault/1/{fault}", value.encode())
    wait_in_guest(client, f"[ -e /run/twin/fault/{fault} ]")
    assert run(client, f"cat /run/twin/fault/{fault}")[1].strip() == value
    client.close()
    boot(bench, console_tap)
    client = ssh_client(bench)
    wait_in_guest(client, f"[ -e /run/twin/fault/{fault} ]")
    assert run(client, f"cat /run/twin/fault/{fault}")[1].strip() == value
    bench.call("DELETE", f"/fault/1/{fault}")
    wait_in_guest(client, f"[ ! -e /run/twin/fault/{fault} ]")
    client.close()


def test_console_port_listens_while_off(bench):
    bench.call("GET", "/outlet/1/0")
    with socket.create_connection(("127.0.0.1", bench.ports()["console"]), timeout=5):
        pass
