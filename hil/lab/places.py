"""labgrid places as a lab user holds them: acquire, release, reserve and who holds what.

What ``labgrid-client`` does before and after a run, in one place for every caller: the
twin's bench selftests and ``fixtures/bench.py`` hold one place, the farm (``hil.farm``,
``fixtures/farm.py``) holds a list of them or reserves them by tags. Each call runs
``labgrid-client`` in a subprocess (labgrid keeps one coordinator session per process,
which the suite's own targets use) with a timeout; a coordinator that does not answer is a
``PlaceError`` that names it, and so is a place somebody else holds.

- ``acquire`` / ``release``: one place for this user and host;
- ``acquire_places`` / ``release_places``: a list of places, all or nothing;
- ``reserve_places`` / ``cancel_reservations``: N places by tags (``board=rk3576``) through
  the coordinator's reservations, waited for a bounded time;
- ``places_info``: every place of a coordinator, its tags and who holds it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import attr

CLIENT_TIMEOUT = 60.0
RESERVE_TIMEOUT = 120.0


class PlaceError(RuntimeError):
    """A place cannot be had or the coordinator cannot be reached; the message says why and what to do."""


class _NoAnswer(PlaceError):
    """labgrid-client got no answer from the coordinator in time."""


@attr.s(frozen=True)
class Reservation:
    token = attr.ib()
    place = attr.ib()


# --- labgrid-client ------------------------------------------------------------------------------

def labgrid_client(coordinator: str, *args: str, place: str | None = None,
                   timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess:
    """``labgrid-client -x COORDINATOR [-p PLACE] ARGS`` in a subprocess, bounded by ``timeout``.

    A non-zero exit is the caller's to read; no answer within ``timeout`` is a ``PlaceError``.
    """
    args = ("-p", place, *args) if place else args
    cmd = [sys.executable, "-m", "labgrid.remote.client", "-x", coordinator, *args]
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0"}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise _NoAnswer(f"labgrid-client {' '.join(args)} got no answer from the coordinator at {coordinator} "
                        f"within {timeout:g} s: is it running (hil farm up)?") from None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"labgrid-client exited with {proc.returncode}"


# --- one place -----------------------------------------------------------------------------------

def acquire(coordinator: str, place: str) -> bool:
    """Acquire a place for this user; True if this call acquired it (and should release it).

    A place this user already holds is fine; one held by somebody else is a PlaceError that
    says who holds it.
    """
    proc = labgrid_client(coordinator, "acquire", place=place)
    if proc.returncode == 0:
        return True
    if "You have already acquired place" in proc.stderr:
        return False
    raise PlaceError(f"cannot acquire place {place} at {coordinator}: {proc.stderr.strip().splitlines()[-1]}")


def release(coordinator: str, place: str) -> None:
    proc = labgrid_client(coordinator, "release", place=place)
    if proc.returncode != 0:
        raise PlaceError(f"cannot release place {place}: {proc.stderr.strip()}")


# --- lists of places -----------------------------------------------------------------------------

def acquire_places(coordinator: str, places: list[str]) -> list[str]:
    """Acquire every place for this user; returns those this call acquired (to release later).

    All or nothing: when one place cannot be had, the places acquired so far are released
    and the error names the place and who holds it.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(places))) as pool:
        outcomes = list(pool.map(lambda p: _try_acquire(coordinator, p), places))
    acquired = [p for p, (ok, _) in zip(places, outcomes) if ok]
    errors = [err for _, err in outcomes if err]
    if errors:
        release_places(coordinator, acquired)
        raise PlaceError("; ".join(errors))
    return acquired


def _try_acquire(coordinator: str, place: str) -> tuple[bool, str | None]:
    try:
        return acquire(coordinator, place), None
    except _NoAnswer:
        return False, f"no answer from the coordinator at {coordinator} while acquiring {place}"
    except PlaceError as e:
        hint = ""
        if "acquired by" in str(e):
            hint = f"; ask them to release it (labgrid-client -p {place} release), or leave {place} out of the run"
        elif "connect" in str(e).lower():
            hint = "; is the coordinator running (hil farm up), and is the address right (--lg-coordinator)?"
        return False, f"{e}{hint}"


def release_places(coordinator: str, places: list[str]) -> list[str]:
    """Release places; returns the errors (a release at the end of a run must not hide its result)."""
    def release_one(place):
        try:
            release(coordinator, place)
            return None
        except PlaceError as e:
            return f"{place}: {e}"

    with ThreadPoolExecutor(max_workers=max(1, len(places))) as pool:
        return [e for e in pool.map(release_one, places) if e]


def places_info(coordinator: str) -> dict[str, dict]:
    """Every place of the coordinator: ``{"acquired": "host/user" or None, "tags": {...}}``."""
    proc = labgrid_client(coordinator, "-v", "places")
    if proc.returncode != 0:
        raise PlaceError(f"cannot list the places at {coordinator}: {_last_line(proc)}")
    info: dict[str, dict] = {}
    current = None
    for line in proc.stdout.splitlines():
        m = re.match(r"Place '([^']+)':", line)
        if m:
            current = info[m.group(1)] = {"acquired": None, "tags": {}}
        elif current is not None and (m := re.match(r"  (acquired|tags):\s*(.*)$", line)):
            key, value = m.groups()
            if key == "acquired":
                current["acquired"] = None if value.strip() in ("", "None") else value.strip()
            else:
                current["tags"] = dict(t.strip().split("=", 1) for t in value.split(",") if "=" in t)
    return info


# --- reservations --------------------------------------------------------------------------------

def reserve_places(coordinator: str, tags: dict[str, str], count: int,
                   timeout: float = RESERVE_TIMEOUT) -> list[Reservation]:
    """Reserve ``count`` places with these tags and acquire them; bounded by ``timeout``.

    labgrid's reservations allocate one place each, so this makes ``count`` of them. The
    coordinator allocates free places at once; when fewer are free the reservations wait,
    and after ``timeout`` they are cancelled with an error that says who holds the places.
    """
    filters = [f"{k}={v}" for k, v in tags.items()]
    reservations: list[str] = []
    got: list[Reservation] = []
    try:
        for _ in range(count):
            proc = labgrid_client(coordinator, "reserve", "--shell", *filters)
            m = re.search(r"LG_TOKEN=(\S+)", proc.stdout)
            if proc.returncode != 0 or not m:
                raise PlaceError(f"cannot reserve a place with {' '.join(filters)} at {coordinator}: "
                                 f"{_last_line(proc)}")
            reservations.append(m.group(1))
        deadline = time.monotonic() + timeout
        for token in reservations:
            remaining = deadline - time.monotonic()
            try:
                proc = labgrid_client(coordinator, "wait", token, timeout=max(1.0, remaining))
            except PlaceError:
                proc = None
            place = _allocation(coordinator, token) if proc is not None and proc.returncode == 0 else None
            if place is None:
                raise _NotAllocated()
            try:
                acquire(coordinator, place)
            except _NoAnswer:
                raise PlaceError(f"no answer from the coordinator at {coordinator} while acquiring a reserved "
                                 "place") from None
            got.append(Reservation(token=token, place=place))
        return got
    except (_NotAllocated, PlaceError) as e:
        release_places(coordinator, [r.place for r in got])
        cancel_reservations(coordinator, reservations)
        if isinstance(e, _NotAllocated):
            raise PlaceError(_no_allocation(coordinator, tags, count, len(got), timeout)) from None
        raise PlaceError(str(e)) from None


class _NotAllocated(Exception):
    pass


def _allocation(coordinator: str, token: str) -> str | None:
    proc = labgrid_client(coordinator, "reservations")
    block = proc.stdout.split(f"Reservation '{token}':", 1)
    if len(block) < 2:
        return None
    block = block[1].split("Reservation '", 1)[0]
    if "allocations:" not in block:
        return None
    m = re.search(r"^\s+main:\s*(\S+)\s*$", block.split("allocations:", 1)[1], re.M)
    return m.group(1) if m else None


def _no_allocation(coordinator: str, tags: dict, count: int, got: int, timeout: float) -> str:
    wanted = " ".join(f"{k}={v}" for k, v in tags.items())
    try:
        busy = {p: i["acquired"] for p, i in places_info(coordinator).items() if i["acquired"]}
    except PlaceError:
        busy = {}
    held = "; held: " + ", ".join(f"{p} by {h}" for p, h in sorted(busy.items())) if busy else ""
    return (f"the coordinator at {coordinator} allocated {got} of {count} place(s) with {wanted} within "
            f"{timeout:g} s{held}: free a place, ask for fewer (-n), or wait longer (--reserve-timeout)")


def cancel_reservations(coordinator: str, tokens: list[str]) -> None:
    for token in tokens:
        try:
            labgrid_client(coordinator, "cancel-reservation", token)
        except PlaceError:
            pass  # an unanswered cancel expires by itself 60 s later (labgrid's reservation timeout)
