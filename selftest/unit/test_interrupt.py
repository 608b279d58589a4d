"""SIGTERM stops a run even when it lands in code that must not be cut (hil.suite.interrupt),
and closing a program after an error never hides that error (hil.lab.process)."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import termios
import threading
import time

import paramiko
import pytest

from hil.lab.process import RemoteProcess
from hil.suite.interrupt import treat_as_interrupt

DEADLINE_S = 5.0


@pytest.fixture
def sigterm_interrupts():
    restore = treat_as_interrupt((signal.SIGTERM,))
    yield
    restore()


def _wait_for_interrupt() -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        time.sleep(0.01)
    pytest.fail(f"no KeyboardInterrupt within {DEADLINE_S} s: the signal was lost")


def test_a_sigterm_inside_a_finaliser_is_not_swallowed(sigterm_interrupts):
    """Python prints 'Exception ignored' for anything raised in __del__ and goes on."""
    ran = []

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside __del__
            ran.append(True)

    with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"):
        Finalised()
        _wait_for_interrupt()
    assert ran == [True], "the finaliser was cut short"


def _bytes_waiting(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def test_a_sigterm_while_paramiko_writes_a_packet_waits_for_the_whole_packet(sigterm_interrupts):
    """Half a packet on the wire ends the SSH connection; the interrupt comes after the write."""
    ours, board = socket.socketpair()
    payload = os.urandom(4 << 20)  # far beyond the socket buffer: the write blocks mid-packet
    received = bytearray()

    def board_reads() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not _bytes_waiting(board) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGTERM)  # paramiko is blocked in the middle of the packet
        board.settimeout(DEADLINE_S)
        while len(received) < len(payload):
            chunk = board.recv(1 << 16)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=board_reads, daemon=True)
    reader.start()
    returned = False
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"):
            message = paramiko.Message()
            message.add_string(payload)
            paramiko.packet.Packetizer(ours).send_message(message)
            returned = True
            _wait_for_interrupt()
        reader.join(DEADLINE_S)
        assert returned, "the interrupt cut the packet"
        assert len(received) >= len(payload), "the board did not get the whole packet"
    finally:
        ours.close()
        board.close()


class _Stuck(RemoteProcess):
    """A program whose connection is gone: closing it fails."""

    def _recv(self, timeout):
        return None

    def _send(self, data):
        raise OSError("gone")

    def _exit_status(self):
        return None

    def _close(self):
        raise OSError("connection lost")


def test_closing_after_an_error_keeps_that_error():
    with pytest.raises(KeyboardInterrupt):
        with _Stuck("demo"):
            raise KeyboardInterrupt
    with pytest.raises(ValueError, match="what happened"):
        with _Stuck("demo"):
            raise ValueError("what happened")


def test_closing_without_an_error_raises_what_closing_met():
    with pytest.raises(OSError, match="connection lost"):
        with _Stuck("demo"):
            pass
