"""SIGTERM and SIGHUP end a run as Ctrl-C does.

CI cancels a job with SIGTERM, a closed terminal sends SIGHUP; Python's default for both is
to die on the spot, leaving the bench, the place, the locked clocks and an unwritten JUnit
file behind. Raised as KeyboardInterrupt instead, they take pytest's own SIGINT path:
fixtures torn down (frequencies restored, place released, bench stopped), results flushed,
the report and JUnit written.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def treat_as_interrupt(signals=SIGNALS):
    """Install the handlers (main thread only); returns a function that puts the old ones back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.signal(s, _interrupt) for s in signals}

    def restore() -> None:
        for s, handler in old.items():
            signal.signal(s, handler)

    return restore
