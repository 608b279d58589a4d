"""labgrid's HTTP power backends get a deadline and name the PDU when it fails (real sockets)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from labgrid.driver.power import rest, simplerest

import hil.lab  # noqa: F401 - bounds the backends, as an env's `imports: [hil.lab]` does
from hil.lab.labfault import LabFault
from hil.lab.pdu import BOUNDED, PDUError


@pytest.fixture
def silent_pdu():
    """A PDU that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(BOUNDED, "timeout", (1.0, 1.0))


def test_a_pdu_that_never_answers_is_a_named_lab_fault_within_the_timeout(silent_pdu, short_timeout):
    url = f"http://admin:pdu-secret-77@127.0.0.1:{silent_pdu}/outlet/{{index}}/{{value}}"
    start = time.monotonic()
    with pytest.raises(PDUError) as err:
        simplerest.power_set(url, None, 1, True)
    assert time.monotonic() - start < 10
    assert isinstance(err.value, LabFault) and err.value.component == "PDU"
    assert f"the PDU at 127.0.0.1:{silent_pdu} did not answer within 1 s" in str(err.value)
    assert "pdu-secret-77" not in str(err.value)


def test_a_pdu_that_refuses_is_named_without_a_raw_connection_pool_error(short_timeout):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(PDUError) as err:
        rest.power_get(f"http://127.0.0.1:{port}/outlet/{{index}}", None, 1)
    assert f"the PDU at 127.0.0.1:{port} refused the connection" in str(err.value)
    assert "HTTPConnectionPool" not in str(err.value)
