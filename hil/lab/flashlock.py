"""One board in loader mode at a time on a lab host, across every process that flashes there.

rkdeveloptool cannot be told which device to use and refuses storage commands when two
rockusb devices are connected (upgrade_tool's LocationID cannot be matched to a port either),
so two boards of one host that are flashed at once would fail, or one would be written with
the other's image. Flashing is therefore serialised per host: from entering loader mode to the
reset out of it, a process holds an exclusive ``flock`` on a lock file named after the host.
``flock`` holds across pytest-xdist workers and separate pytest runs alike, and the kernel
drops it when its process dies, so a killed run leaves no stale lock. The holder writes who it
is into the file, so a run that waits too long says whom it waited for.

The lock lives on the machine that runs the flash (``HIL_LOCK_DIR``, else
``/tmp/rk3576-hil-locks``), named after the host the boards' USB is on; runs on other
machines that flash boards of the same exporter are not seen (give them one lock folder on a
shared filesystem, or one machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import time
from pathlib import Path

import attr

log = logging.getLogger("hil.lab.flashlock")

LOCK_DIR_ENV = "HIL_LOCK_DIR"
DEFAULT_LOCK_DIR = Path("/tmp/rk3576-hil-locks")
POLL = 0.2


class HostLockTimeout(TimeoutError):
    """The host's flash lock stayed taken past the timeout; the message names the holder."""


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


@attr.s(frozen=True)
class HostFlashLock:
    """The flash lock of one lab host (``host``: where the boards' USB loader ports are)."""

    host = attr.ib()
    timeout = attr.ib(default=1800.0, converter=float)
    directory = attr.ib(factory=lock_dir, converter=Path)

    @property
    def path(self) -> Path:
        return self.directory / f"rockusb-{re.sub(r'[^A-Za-z0-9._-]', '_', self.host)}.lock"

    def holder(self) -> str:
        """Who holds (or last held) the lock, as its holder wrote it."""
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "unknown"
        if not info:
            return "unknown"
        since = time.time() - info.get("since", time.time())
        return f"{info.get('holder', '?')} (pid {info.get('pid', '?')} on {info.get('machine', '?')}, for {since:.0f} s)"

    @contextlib.contextmanager
    def held(self, holder: str):
        """Hold the lock for the block; waits up to ``timeout``, then HostLockTimeout naming the holder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # one folder for every user of the host
            os.chmod(self.directory, 0o1777)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o666)
            started = time.monotonic()
            deadline = started + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise HostLockTimeout(
                            f"the flash lock of {self.host} ({self.path}) is still held by {self.holder()} after "
                            f"{self.timeout:g} s: another run is flashing a board of that host (one board per host "
                            "may be in loader mode at a time). Wait for it, or raise lock_timeout") from None
                    time.sleep(POLL)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"holder": holder, "pid": os.getpid(), "machine": socket.gethostname(),
                                      "since": time.time()}).encode(), 0)
            log.info("flash lock of %s taken by %s after %.1f s", self.host, holder, time.monotonic() - started)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                log.info("flash lock of %s released by %s", self.host, holder)
        finally:
            os.close(fd)
