"""A board that goes silent behind a live TCP connection (a panic behind QEMU's port forward,
a hung kernel) is found by the SSH driver's probe and named, instead of waited on until a
long timeout. A real paramiko SSH server on loopback plays the board."""

from __future__ import annotations

import socket
import threading
import time

import paramiko
import pytest
from labgrid import Target
from labgrid.resource import NetworkService

from hil.lab.paramikossh import ParamikoSSHDriver, SSHError
from hil.lab.process import ProcessTimeout

PASSWORD = "probe-test-pw-91"


class _Board(paramiko.ServerInterface):
    """Answers the first channel, then freezes (its transport thread blocks) when told to."""

    def __init__(self, frozen: threading.Event, stop: threading.Event):
        self.frozen, self.stop, self.channels, self.execs = frozen, stop, 0, 0

    def check_auth_password(self, username, password):
        return paramiko.AUTH_SUCCESSFUL if (username, password) == ("root", PASSWORD) else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password"

    def check_channel_request(self, kind, chanid):
        self.channels += 1
        if self.frozen.is_set():
            self.stop.wait(30)  # a dead board: nothing behind the connection answers any more
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        self.execs += 1
        if self.execs > 1:  # the driver stopping the program: done at once
            threading.Thread(target=lambda: (channel.send_exit_status(0), channel.close()), daemon=True).start()
        return True


@pytest.fixture
def board():
    key = paramiko.RSAKey.generate(2048)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    frozen, stop = threading.Event(), threading.Event()
    iface = _Board(frozen, stop)
    transports = []

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            t = paramiko.Transport(conn)
            t.add_server_key(key)
            t.start_server(server=iface)
            transports.append(t)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield {"port": server.getsockname()[1], "host_key": f"{key.get_name()} {key.get_base64()}",
           "frozen": frozen, "iface": iface}
    stop.set()
    thread.join(timeout=5)
    for t in transports:
        t.close()
    server.close()


def _driver(board, **kwargs) -> tuple[Target, ParamikoSSHDriver]:
    target = Target("probe")
    NetworkService(target, None, address="127.0.0.1", port=board["port"], username="root", password=PASSWORD)
    driver = ParamikoSSHDriver(target, None, host_key=board["host_key"], connection_timeout=10, **kwargs)
    target.activate(driver)
    return target, driver


def test_a_silent_board_that_answers_the_probe_is_waited_for(board):
    target, driver = _driver(board, probe_after=0.5, probe_timeout=2)
    try:
        proc = driver.start("sleep 100")
        with pytest.raises(ProcessTimeout):
            proc.expect("never printed", timeout=2.5)
        assert board["iface"].channels >= 3  # the program's channel, then probes that were answered
    finally:
        target.cleanup()


def test_a_board_that_stops_answering_is_named_within_the_probe_time(board):
    target, driver = _driver(board, probe_after=0.5, probe_timeout=1)
    try:
        proc = driver.start("./demo model.rkllm")
        board["frozen"].set()
        start = time.monotonic()
        with pytest.raises(SSHError) as err:
            proc.expect("user: ", timeout=300)
        assert time.monotonic() - start < 10, "not found within the probe time"
        assert "stopped answering on SSH while running './demo model.rkllm'" in str(err.value)
        assert "no answer to a probe within 1 s" in str(err.value)
    finally:
        target.cleanup()
