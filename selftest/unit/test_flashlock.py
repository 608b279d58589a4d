"""hil.lab.flashlock: one flash at a time per lab host, across real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from hil.lab.flashlock import HostFlashLock, HostLockTimeout
from hil.paths import REPO

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hil.lab.flashlock import HostFlashLock
    lock_dir, host, marker = sys.argv[1:4]
    with HostFlashLock(host, timeout=30, directory=lock_dir).held("target board-a"):
        print("held", flush=True)
        sys.stdin.readline()  # hold until told (or killed)
        Path(marker).write_text("released")
""")


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of ``host`` until its stdin gets a line."""
    procs = []

    def start(host: str = "lab-host-1") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "locks"), host,
                                 str(tmp_path / "released")], cwd=REPO, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_second_process_waits_for_the_first(tmp_path, holder):
    proc = holder()
    lock = HostFlashLock("lab-host-1", timeout=30, directory=tmp_path / "locks")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    with lock.held("target board-b"):
        assert (tmp_path / "released").read_text() == "released", "held before the first process let go"
        assert "target board-b" in lock.holder() and str(os.getpid()) in lock.holder()


def test_a_timeout_names_the_holder_and_a_dead_holder_frees_the_lock(tmp_path, holder):
    proc = holder()
    lock = HostFlashLock("lab-host-1", timeout=0.5, directory=tmp_path / "locks")
    with pytest.raises(HostLockTimeout) as e:
        with lock.held("target board-b"):
            pass
    for words in ("lab-host-1", "still held by target board-a", f"pid {proc.pid}", "after 0.5 s"):
        assert words in str(e.value)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no cleanup runs, the kernel drops the flock
    proc.wait(timeout=10)
    with HostFlashLock("lab-host-1", timeout=10, directory=tmp_path / "locks").held("target board-b"):
        assert not (tmp_path / "released").exists()


def test_boards_of_other_hosts_flash_at_once(tmp_path, holder):
    holder("lab-host-1")
    with HostFlashLock("lab-host-2", timeout=0.5, directory=tmp_path / "locks").held("target board-c"):
        pass
    assert HostFlashLock("lab host/3", directory=tmp_path).path.name == "rockusb-lab_host_3.lock"
