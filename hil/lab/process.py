"""Long-running programs on a board that the suite talks to while they run.

labgrid's ``CommandProtocol.run`` waits for a command to end. The RKLLM ``demo`` is a
``user:`` / ``robot:`` dialogue and the NPU sampler runs for as long as an inference does, so
drivers that need that ask a ``ProcessProtocol`` to ``start`` a command and get a
``RemoteProcess``: send text to its stdin, ``expect`` a pattern in its output (stdout and
stderr merged, as a serial capture would see them) within a timeout, and learn how it ended.

``RemoteProcess`` holds the expect logic; a transport (an SSH channel, a local pipe in unit
tests) only supplies ``_recv``, ``_send``, ``_exit_status`` and ``_close``.
"""

from __future__ import annotations

import abc
import logging
import re
import signal
import time

TAIL_CHARS = 2000
log = logging.getLogger(__name__)


def describe_exit(status: int | None) -> str:
    """Name how a program ended: shells report death by signal N as status 128 + N."""
    if status is None:
        return "still running"
    if status == 0:
        return "exit status 0"
    if status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            return f"exit status {status}"
        meaning = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed (out of memory?)",
                   "SIGABRT": "aborted", "SIGBUS": "bus error", "SIGILL": "illegal instruction"}.get(name)
        return f"exit status {status} ({name}{': ' + meaning if meaning else ''})"
    return f"exit status {status}"


class ProcessError(RuntimeError):
    """The program did not produce what was expected; carries the tail of its output."""

    def __init__(self, message: str, *, output: str = "", status: int | None = None):
        tail = output[-TAIL_CHARS:]
        super().__init__(f"{message}\n--- last output ---\n{tail}" if tail else message)
        self.output = output
        self.status = status


class ProcessTimeout(ProcessError, TimeoutError):
    """Nothing matching arrived within the timeout while the program kept running."""


class ProcessExited(ProcessError):
    """The program ended before printing what was expected."""


class RemoteProcess(abc.ABC):
    """A started program: its output so far, its stdin, and its end."""

    def __init__(self, command: str):
        self.command = command
        self.output = ""  # everything received, decoded as UTF-8 with replacement
        self.position = 0  # expect() searches from here; a match moves it past the match
        self.started = time.monotonic()

    # --- transport -----------------------------------------------------------------------
    @abc.abstractmethod
    def _recv(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` for output; '' if none yet, None once the stream has ended."""

    @abc.abstractmethod
    def _send(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def _exit_status(self) -> int | None:
        """The exit status once the program has ended and its output is drained, else None."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Stop the program (if running) and free the transport."""

    # --- API -----------------------------------------------------------------------------
    def send(self, text: str) -> None:
        self._send(text.encode("utf-8"))

    def sendline(self, text: str) -> None:
        self.send(text + "\n")

    def expect(self, pattern: str | re.Pattern, timeout: float) -> re.Match:
        """Wait for ``pattern`` in the output after the last match; raise ProcessTimeout or ProcessExited."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output, self.position)
            if match:
                self.position = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessTimeout(f"{self.command!r}: no {regex.pattern!r} within {timeout:g} s",
                                     output=self.output)
            chunk = self._recv(min(remaining, 0.5))
            if chunk is None:
                status = self.wait(timeout=5.0, check=False)
                raise ProcessExited(f"{self.command!r} ended ({describe_exit(status)}) before printing "
                                    f"{regex.pattern!r}", output=self.output, status=status)
            self.output += chunk

    def since(self, start: int) -> str:
        """Output from character offset ``start`` up to the last match."""
        return self.output[start:self.position]

    def wait(self, timeout: float, *, check: bool = True) -> int | None:
        """Read until the program ends; its exit status (None if it outlived ``timeout`` and check is False)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self._exit_status()
            if status is not None:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if check:
                    raise ProcessTimeout(f"{self.command!r} still running after {timeout:g} s", output=self.output)
                return None
            chunk = self._recv(min(remaining, 0.5))
            if chunk:
                self.output += chunk

    def close(self) -> None:
        self._close()

    def abandon(self) -> None:
        """Close while another exception is on its way out. Closing often fails for the same
        reason (the connection went with the board); that is logged, never raised over the
        exception that says what happened, nor over a Ctrl-C."""
        try:
            self._close()
        except Exception as e:
            log.warning("could not close %r after an error: %s", self.command, e)

    def __enter__(self) -> "RemoteProcess":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


class ProcessProtocol(abc.ABC):
    """Start programs on the board that keep running while the suite talks to them."""

    @abc.abstractmethod
    def start(self, command: str, *, env: dict[str, str] | None = None, cwd: str | None = None) -> RemoteProcess:
        """Start ``command`` (a shell command line; quote its arguments) with extra ``env`` in ``cwd``."""
        raise NotImplementedError
