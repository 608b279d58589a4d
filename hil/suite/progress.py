"""Where a long test is: cycle i of N, soak time left, the current tok/s.

On a terminal it is a tqdm bar (a well-kept progress bar: rate, elapsed and remaining time
without code of ours); elsewhere (a CI log, a farm worker) a line every tenth of the way, so a
log shows the run moving without a line per cycle. pytest captures a test's output, so the
bar writes through ``suspend``, which the fixture sets to pytest's "capture disabled" context.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger("hil.progress")


class Progress:
    """``update(n, note)`` after each step; ``close()`` at the end (also as a context manager).
    ``unit`` names the steps as counted ("cycles", "cuts", "s")."""

    def __init__(self, total: float, desc: str, *, unit: str = "cycles", stream: TextIO | None = None,
                 write_line: Callable[[str], None] | None = None,
                 suspend: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self._write_line = write_line or log.info
        self._suspend = suspend
        self._bar = None
        self._next_line = 0.0
        self._done: float = 0
        if stream is not None and stream.isatty():
            from tqdm import tqdm

            with self._suspend():
                self._bar = tqdm(total=total, desc=desc, unit=unit, file=stream, leave=True, dynamic_ncols=True)

    def update(self, done: float, note: str = "") -> None:
        """``done`` steps (cycles, seconds) of ``total`` so far; ``note`` says how it goes."""
        step, self._done = done - self._done, done
        if self._bar is not None:
            with self._suspend():
                self._bar.set_postfix_str(note, refresh=False)
                self._bar.update(step)
            return
        if done >= self._next_line or done >= self.total:
            self._next_line = done + self.total / 10
            with self._suspend():
                self._write_line(f"{self.desc}: {done:g} of {self.total:g} {self.unit}{', ' + note if note else ''}")

    def close(self) -> None:
        if self._bar is not None:
            with self._suspend():
                self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *_) -> None:
        self.close()
