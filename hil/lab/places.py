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
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import attr

CLIENT_TIMEOUT = 60.0
RESERVE_TIMEOUT = 120.0
UNTAGGED_GRACE = 5.0  # how long an untagged place of this user may be a run between acquire and tag


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

@attr.s(frozen=True)
class RunId:
    """The run that holds a place: its host, pid and start time.

    labgrid locks a place for a user (``host/user``); two runs of the same user would share
    the board without noticing. So a run writes who it is into the place it acquired (tag
    ``hil_run``), and another run that finds the place acquired by the same user reads it
    back: a live run is named, a dead one's lock is stale and is taken over.
    """

    host = attr.ib()
    pid = attr.ib(converter=int)
    started = attr.ib(converter=int)  # Unix time

    TAG = "hil_run"

    @classmethod
    def this_process(cls) -> "RunId":
        return cls(host=labgrid_host(), pid=os.getpid(), started=_PROCESS_STARTED)

    @property
    def tag(self) -> str:
        return f"{self.pid}_{self.started}_{self.host}"

    @classmethod
    def from_tag(cls, value: str | None) -> "RunId | None":
        pid, _, rest = (value or "").partition("_")
        started, _, host = rest.partition("_")
        try:
            return cls(host=host, pid=pid, started=started) if host else None
        except ValueError:
            return None

    def alive(self) -> bool | None:
        """Whether the run's process still runs; None when it ran on another host."""
        if self.host != labgrid_host():
            return None
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"the run of pid {self.pid} on {self.host}, started {when}"


_PROCESS_STARTED = int(time.time())


def labgrid_host() -> str:
    """This host as labgrid names it in ``acquired: host/user``."""
    return os.environ.get("LG_HOSTNAME", socket.gethostname())


def acquire(coordinator: str, place: str, run: RunId | None = None) -> str | None:
    """Acquire a place for this run alone (this process's run when ``run`` is None).

    A place held by somebody else, by another live run of this user, or by this user but no
    run (a ``labgrid-client acquire`` by hand) is a PlaceError that names the holder and how
    to free it. A place still held by a run of this host that died (kill -9) is taken over;
    the returned note says so (None when there was nothing to take over).
    """
    run = run or RunId.this_process()
    note = None
    deadline = time.monotonic() + UNTAGGED_GRACE
    while True:
        proc = labgrid_client(coordinator, "acquire", place=place)
        if proc.returncode == 0:
            break
        if "You have already acquired place" not in proc.stderr:
            raise PlaceError(f"cannot acquire place {place} at {coordinator}: {_last_line(proc)}")
        holder = _run_of(coordinator, place)
        # A run tags its place just after acquiring it and untags it just before releasing it:
        # an untagged place of this user is a run in between for a moment, or a hand's lock.
        if holder is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if proc.returncode != 0:
        free = f"labgrid-client -x {coordinator} -p {place} release"
        if holder is None:
            raise PlaceError(f"place {place} is already acquired by you ({labgrid_host()}), but by no run of this "
                             f"suite: a run holds its board alone; release it first ({free})")
        if holder == run:
            return None
        if holder.alive() is not False:
            where = "" if holder.alive() else " (on another host: check it there)"
            raise PlaceError(f"place {place} is held by {holder.describe()}{where}; wait for it to end, or, if "
                             f"that run is gone, release its stale lock: {free}")
        note = f"place {place}: took over the stale lock of {holder.describe()}, which is gone"
    _set_run_tag(coordinator, place, run.tag)
    return note


def release(coordinator: str, place: str, run: RunId | None = None) -> None:
    """Release a place this run acquired; a place another run holds by now is left to it."""
    run = run or RunId.this_process()
    holder = _run_of(coordinator, place)
    if holder is not None and holder != run:
        raise PlaceError(f"place {place} is held by {holder.describe()} now, not by this run: left to it")
    _set_run_tag(coordinator, place, "")
    proc = labgrid_client(coordinator, "release", place=place)
    if proc.returncode != 0:
        raise PlaceError(f"cannot release place {place}: {proc.stderr.strip()}")


def _run_of(coordinator: str, place: str) -> RunId | None:
    """The run whose tag a place carries, if any."""
    return RunId.from_tag(places_info(coordinator).get(place, {}).get("tags", {}).get(RunId.TAG))


def _set_run_tag(coordinator: str, place: str, value: str) -> None:
    """Write (or, with "", remove) the ``hil_run`` tag of a place."""
    proc = labgrid_client(coordinator, "set-tags", f"{RunId.TAG}={value}", place=place)
    if proc.returncode != 0:
        raise PlaceError(f"cannot mark place {place} as this run's: {_last_line(proc)}")


# --- lists of places -----------------------------------------------------------------------------

def acquire_places(coordinator: str, places: list[str], notes: list | None = None) -> list[str]:
    """Acquire every place for this run; returns them (to release later).

    All or nothing: when one place cannot be had, the places acquired so far are released
    and the error names the place and who holds it. ``notes`` gets what was taken over.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(places))) as pool:
        outcomes = list(pool.map(lambda p: _try_acquire(coordinator, p), places))
    acquired = [p for p, (ok, _) in zip(places, outcomes) if ok]
    errors = [err for ok, err in outcomes if not ok]
    if errors:
        release_places(coordinator, acquired)
        raise PlaceError("; ".join(errors))
    if notes is not None:
        notes += [note for _, note in outcomes if note]
    return acquired


def _try_acquire(coordinator: str, place: str) -> tuple[bool, str | None]:
    """(acquired, note) or (False, why not)."""
    try:
        return True, acquire(coordinator, place)
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
