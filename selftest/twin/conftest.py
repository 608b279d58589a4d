"""Helpers to watch a board from outside, as a person at the bench would."""

from __future__ import annotations

import re
import socket
import threading
import time

import paramiko
import pytest


class ConsoleTap:
    """A second client on a board's console port that records everything the board prints."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        self._sock.settimeout(None)
        try:
            while data := self._sock.recv(4096):
                with self._cond:
                    self._buf += data
                    self._cond.notify_all()
        except OSError:
            pass

    @property
    def text(self) -> str:
        with self._cond:
            return self._buf.decode(errors="replace")

    def mark(self) -> int:
        with self._cond:
            return len(self._buf)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """Wait until pattern appears in the output after offset start; fail with the output's tail."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf[start:].decode(errors="replace"))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = self._buf[-600:].decode(errors="replace")
                    raise AssertionError(f"{pattern!r} not seen on the console within {timeout} s; last output:\n{tail}")
                self._cond.wait(left)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def console_tap():
    taps = []

    def tap(port: int) -> ConsoleTap:
        taps.append(ConsoleTap(port))
        return taps[-1]

    yield tap
    for t in taps:
        t.close()


def ssh_client(bench, board: int = 1, timeout: float = 60.0) -> paramiko.SSHClient:
    """SSH to a board with its host key pinned from the bench (strict checking), retrying until up."""
    host_key = bench.call("GET", "/hostkey")[1].decode().split()
    port = bench.ports(board)["ssh"]
    deadline = time.monotonic() + timeout
    while True:
        client = paramiko.SSHClient()
        client.get_host_keys().add(f"[127.0.0.1]:{port}", host_key[0],
                                   paramiko.Ed25519Key(data=__import__("base64").b64decode(host_key[1])))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect("127.0.0.1", port=port, username="root", password="hil-twin-3vQ8", timeout=5,
                           banner_timeout=5, auth_timeout=5, look_for_keys=False, allow_agent=False)
            return client
        except (OSError, paramiko.SSHException):
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run(client: paramiko.SSHClient, cmd: str, timeout: float = 30.0) -> tuple[int, str]:
    _, stdout, _ = client.exec_command(cmd + " 2>&1", timeout=timeout)
    out = stdout.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out


def wait_in_guest(client: paramiko.SSHClient, condition: str, timeout: float = 10.0) -> None:
    """Poll a shell condition on the board until it holds; fail after timeout."""
    tries = max(1, int(timeout / 0.1))
    rc, out = run(client, f"i=0; until {condition}; do i=$((i+1)); [ $i -ge {tries} ] && exit 1; usleep 100000; done",
                  timeout=timeout + 10)
    assert rc == 0, f"condition {condition!r} did not hold within {timeout} s on the board {out}"
