"""What a board printed on its console, kept for error messages and boot checks.

labgrid reports every console read as a ``console``-tagged step (that is how ``--lg-log``
writes its files). A ``ConsoleRecord`` subscribes to the same events for one console
driver, so the strategy can hand out the console text of a boot, and an error can carry
the last lines the board printed, whichever driver happened to be reading at the time.
"""

from __future__ import annotations

import threading

from labgrid.step import steps

from hil.rockchip.text import clean_text


class ConsoleRecord:
    """Everything one console driver read, bounded to ``limit`` bytes (oldest dropped)."""

    def __init__(self, console, limit: int = 8 * 1024 * 1024) -> None:
        self.console = console
        self.limit = limit
        self._buf = bytearray()
        self._dropped = 0  # bytes dropped from the front, so marks stay absolute
        self._lock = threading.Lock()
        steps.subscribe(self._notify)

    def _notify(self, event) -> None:
        step = event.step
        if (step.tag == "console" and step.title == "read" and step.source is self.console
                and event.data.get("state") == "stop" and step.result):
            with self._lock:
                self._buf += step.result
                excess = len(self._buf) - self.limit
                if excess > 0:
                    del self._buf[:excess]
                    self._dropped += excess

    def mark(self) -> int:
        """An offset to pass to ``since`` later."""
        with self._lock:
            return self._dropped + len(self._buf)

    def since(self, mark: int) -> str:
        """The console text since ``mark``, cleaned as a reader sees it (no escapes, one ``\\n`` per line end)."""
        with self._lock:
            data = bytes(self._buf[max(0, mark - self._dropped):])
        return clean_text(data.decode("utf-8", errors="replace"))

    def tail(self, lines: int = 25, mark: int = 0) -> str:
        text = self.since(mark).rstrip("\n")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        steps.unsubscribe(self._notify)
