"""A serial console server on a raw TCP port, as ser2net's raw accepter provides.

It keeps listening while the board is off (a console server does not go away with the
board's power), fans the board's output out to every connected client and passes what
clients type to the board's UART. Like a real line, bytes typed while the board is off
are lost.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("hil.twin.console")

MAX_CLIENTS = 10


class ConsoleServer:
    """Raw TCP console for one board: ``write`` feeds board output to the clients."""

    def __init__(self, host: str, port: int, to_board: Callable[[bytes], None]) -> None:
        self.host, self.port = host, port
        self._to_board = to_board
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.5)
        self._stopped = threading.Event()
        self.garbage_rate = 0.0  # fault: probability per output chunk of injecting line noise
        self._rng = random.Random()
        threading.Thread(target=self._accept_loop, name=f"console-{port}", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if len(self._clients) >= MAX_CLIENTS:
                    conn.close()
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(5.0)
                self._clients.append(conn)
            threading.Thread(target=self._client_loop, args=(conn,), daemon=True).start()

    def _client_loop(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            while data := conn.recv(4096):
                self._to_board(data)
        except OSError:
            pass
        finally:
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            if conn in self._clients:
                self._clients.remove(conn)
        try:
            conn.close()
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        """Send board output to every client; a client that cannot keep up is dropped."""
        if self.garbage_rate and self._rng.random() < self.garbage_rate:
            data = data + bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(4, 32)))
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            try:
                conn.sendall(data)
            except OSError:
                self._drop(conn)

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            clients, self._clients = self._clients, []
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
