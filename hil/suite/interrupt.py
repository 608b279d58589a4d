"""SIGTERM and SIGHUP end a run as Ctrl-C does.

CI cancels a job with SIGTERM, a closed terminal sends SIGHUP; Python's default for both is
to die on the spot, leaving the bench, the place, the locked clocks and an unwritten JUnit
file behind. Raised as KeyboardInterrupt instead, they take pytest's own SIGINT path:
fixtures torn down (frequencies restored, place released, bench stopped), results flushed,
the report and JUnit written.

A signal handler raises at whatever bytecode the main thread is running, and two places
must not be interrupted: a finaliser (``__del__``, a weakref callback), where Python prints
"Exception ignored" and the run goes on as if nothing was asked; and paramiko's packet
writer, where half a packet on the wire kills the board's SSH connection for the rest of
the run. There the handler defers: it sends the signal again a moment later.
"""

from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGHUP)
UNINTERRUPTIBLE_MODULES = frozenset({"paramiko.packet", "weakref"})
FINALISERS = frozenset({"__del__"})
RETRY_S = 0.05


def uninterruptible(frame) -> bool:
    """Whether the main thread, stopped at ``frame``, is in code an exception must not cut."""
    while frame is not None:
        if frame.f_code.co_name in FINALISERS or frame.f_globals.get("__name__") in UNINTERRUPTIBLE_MODULES:
            return True
        frame = frame.f_back
    return False


def _interrupt(signum, frame):
    if uninterruptible(frame):
        retry = threading.Timer(RETRY_S, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
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
