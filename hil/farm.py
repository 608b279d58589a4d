"""A farm of RK3576 boards behind a labgrid coordinator: places, reservations and health checks.

The suite drives one board per process; a farm run (``fixtures/farm.py``) holds several
places at once, so this module does what a lab user would do with ``labgrid-client`` before
and after a run, for a list of places:

- ``acquire_places`` / ``release_places``: hold named places for this user and host; a place
  somebody else holds is a ``FarmError`` that names them;
- ``reserve_places``: ask the coordinator for N places by tags (``board=rk3576``) through its
  reservations, wait a bounded time for the allocation and acquire what was allocated;
- ``check_health``: boot each place to a shell and read its NPU, one subprocess per place
  (``python -m hil.farm check``), all at once, each with a timeout. A board that fails is a
  lab fault: the run leaves it out instead of failing its tests.

``hil farm ...`` (``add_commands``) shows the farm of a running bench and the commands that
use it; the bench itself (``hil twin up --boards N``) already runs the coordinator and the
exporter that publish its boards as places ``twin-1`` ... ``twin-N``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template

import attr
import yaml

from hil.paths import REPO
from hil.twin import lab

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default (labgrid/resource/remote.py)
HEALTH_TIMEOUT = 600.0
RESERVE_TIMEOUT = 120.0
FARM_ENV = REPO / "env" / "farm.yaml"
_RESULT = "hil-farm-health: "


class FarmError(RuntimeError):
    """A place cannot be had or the farm cannot be reached; the message says why and what to do."""


@attr.s(frozen=True)
class Health:
    """One place's health check: healthy, or the lab fault that takes it out of the run."""

    place = attr.ib()
    healthy = attr.ib()
    message = attr.ib(default="")  # the fault, when not healthy
    seconds = attr.ib(default=0.0)
    npu_cores = attr.ib(factory=list)


@attr.s(frozen=True)
class Reservation:
    token = attr.ib()
    place = attr.ib()


# --- environment -------------------------------------------------------------------------------

def env_data(env_file: str | os.PathLike) -> dict:
    from labgrid.util import yaml as labgrid_yaml

    with open(env_file) as f:
        data = labgrid_yaml.load(f) or {}
    return data if isinstance(data, dict) else {}


def remote_place(env_file: str | os.PathLike) -> str | Template | None:
    """The main target's RemotePlace name as written: a str, a ``!template`` or None."""
    main = (env_data(env_file).get("targets") or {}).get("main") or {}
    return ((main.get("resources") or {}).get("RemotePlace") or {}).get("name")


def is_farm_env(env_file: str | os.PathLike) -> bool:
    """True when the environment takes its place from ``$LG_PLACE`` (``!template '$LG_PLACE'``)."""
    name = remote_place(env_file)
    return isinstance(name, Template) and "LG_PLACE" in name.template


def coordinator_address(env_file: str | os.PathLike | None, override: str | None = None) -> str:
    """Where places live, in labgrid's order: --lg-coordinator, the env's option, LG_COORDINATOR."""
    if override:
        return override
    if env_file:
        value = (env_data(env_file).get("options") or {}).get("coordinator_address")
        if isinstance(value, Template):
            value = value.safe_substitute(os.environ)
        if value:
            return str(value)
    return os.environ.get("LG_COORDINATOR", DEFAULT_COORDINATOR)


def parse_places(text: str | None) -> list[str]:
    places = [p.strip() for p in (text or "").replace(" ", ",").split(",") if p.strip()]
    dupes = sorted({p for p in places if places.count(p) > 1})
    if dupes:
        raise FarmError(f"places listed twice: {', '.join(dupes)}")
    return places


def parse_tags(text: str | None) -> dict[str, str]:
    tags = {}
    for pair in (text or "").replace(" ", ",").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.strip().partition("=")
        if not sep or not key or not value:
            raise FarmError(f"place tag {pair!r} must be KEY=VALUE, e.g. board=rk3576")
        tags[key] = value
    return tags


# --- places --------------------------------------------------------------------------------------

def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"labgrid-client exited with {proc.returncode}"


def _client(coordinator: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "labgrid.remote.client", "-x", coordinator, *args]
    env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0"}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FarmError(f"labgrid-client {' '.join(args)} got no answer from the coordinator at {coordinator} "
                        f"within {timeout:g} s: is it running (hil farm up)?") from None


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
        raise FarmError("; ".join(errors))
    return acquired


def _try_acquire(coordinator: str, place: str) -> tuple[bool, str | None]:
    try:
        return lab.acquire(coordinator, place), None
    except subprocess.TimeoutExpired:
        return False, f"no answer from the coordinator at {coordinator} while acquiring {place}"
    except lab.LabError as e:
        hint = ""
        if "acquired by" in str(e):
            hint = f"; ask them to release it (labgrid-client -p {place} release), or leave {place} out of the run"
        elif "connect" in str(e).lower():
            hint = "; is the coordinator running (hil farm up), and is the address right (--lg-coordinator)?"
        return False, f"{e}{hint}"


def release_places(coordinator: str, places: list[str]) -> list[str]:
    """Release places; returns the errors (a release at the end of a run must not hide its result)."""
    def release(place):
        try:
            lab.release(coordinator, place)
            return None
        except (lab.LabError, subprocess.TimeoutExpired) as e:
            return f"{place}: {e}"

    with ThreadPoolExecutor(max_workers=max(1, len(places))) as pool:
        return [e for e in pool.map(release, places) if e]


def places_info(coordinator: str) -> dict[str, dict]:
    """Every place of the coordinator: ``{"acquired": "host/user" or None, "tags": {...}}``."""
    proc = _client(coordinator, "-v", "places")
    if proc.returncode != 0:
        raise FarmError(f"cannot list the places at {coordinator}: {_last_line(proc)}")
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
            proc = _client(coordinator, "reserve", "--shell", *filters)
            m = re.search(r"LG_TOKEN=(\S+)", proc.stdout)
            if proc.returncode != 0 or not m:
                raise FarmError(f"cannot reserve a place with {' '.join(filters)} at {coordinator}: {_last_line(proc)}")
            reservations.append(m.group(1))
        deadline = time.monotonic() + timeout
        for token in reservations:
            remaining = deadline - time.monotonic()
            try:
                proc = _client(coordinator, "wait", token, timeout=max(1.0, remaining))
            except FarmError:
                proc = None
            place = _allocation(coordinator, token) if proc is not None and proc.returncode == 0 else None
            if place is None:
                raise _NotAllocated()
            lab.acquire(coordinator, place)
            got.append(Reservation(token=token, place=place))
        return got
    except (_NotAllocated, FarmError, lab.LabError, subprocess.TimeoutExpired) as e:
        release_places(coordinator, [r.place for r in got])
        cancel_reservations(coordinator, reservations)
        if isinstance(e, _NotAllocated):
            raise FarmError(_no_allocation(coordinator, tags, count, len(got), timeout)) from None
        if isinstance(e, subprocess.TimeoutExpired):
            raise FarmError(f"no answer from the coordinator at {coordinator} while acquiring a reserved "
                            "place") from None
        raise FarmError(str(e)) from None


class _NotAllocated(Exception):
    pass


def _allocation(coordinator: str, token: str) -> str | None:
    proc = _client(coordinator, "reservations")
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
    except FarmError:
        busy = {}
    held = "; held: " + ", ".join(f"{p} by {h}" for p, h in sorted(busy.items())) if busy else ""
    return (f"the coordinator at {coordinator} allocated {got} of {count} place(s) with {wanted} within "
            f"{timeout:g} s{held}: free a place, ask for fewer (-n), or wait longer (--reserve-timeout)")


def cancel_reservations(coordinator: str, tokens: list[str]) -> None:
    for token in tokens:
        try:
            _client(coordinator, "cancel-reservation", token)
        except FarmError:
            pass  # an unanswered cancel expires by itself 60 s later (labgrid's reservation timeout)


# --- health --------------------------------------------------------------------------------------

def check(env_file: str, place: str, coordinator: str | None = None, log_dir: str | None = None) -> Health:
    """Boot the place's board to a shell and read its NPU load file, in this process.

    Healthy means: the strategy reached ``shell`` and the rknpu driver lists both RK3576
    cores. Anything else is the lab fault, with the strategy's own cause (which carries the
    last console lines when the board did not boot).
    """
    from labgrid import Environment
    from labgrid.consoleloggingreporter import ConsoleLoggingReporter

    from hil.rockchip.versions import RK3576

    os.environ["LG_PLACE"] = place
    start = time.monotonic()
    if log_dir:
        ConsoleLoggingReporter.start(log_dir)
    target = strategy = None
    try:
        env = Environment(config_file=env_file)
        if coordinator:
            env.config.set_option("coordinator_address", coordinator)
        target = env.get_target("main")
        strategy = target.get_driver("Strategy")
        strategy.transition("shell")
        load = target.get_driver("NPUProtocol").load()
        cores = sorted(load)
        expected = [f"Core{n}" for n in range(RK3576.npu_cores)]
        if cores != expected:
            return Health(place=place, healthy=False, seconds=time.monotonic() - start, npu_cores=cores,
                          message=f"the rknpu driver lists NPU cores {cores}, an RK3576 has {expected}")
        return Health(place=place, healthy=True, seconds=time.monotonic() - start, npu_cores=cores)
    except Exception as e:  # noqa: BLE001 - any failure to boot or to read the NPU is the board's lab fault
        cause = getattr(strategy, "broken", None) or e  # @never_retry keeps the first error, not "broken state"
        return Health(place=place, healthy=False, seconds=time.monotonic() - start,
                      message=f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else str(cause))
    finally:
        if target is not None:
            target.cleanup()
        if log_dir:
            ConsoleLoggingReporter.stop()


def check_health(env_file: str, places: list[str], *, coordinator: str | None = None,
                 log_dir: str | os.PathLike | None = None, timeout: float = HEALTH_TIMEOUT) -> dict[str, Health]:
    """Health-check every place at once, one subprocess each, none longer than ``timeout``.

    Subprocesses, because labgrid keeps one coordinator session and one set of drivers per
    process; the places must be acquired by this user already. With ``log_dir``, each board's
    console goes to ``log_dir/<place>/`` (where the run's console log of that board goes too).
    """
    procs = {}
    with tempfile.TemporaryDirectory(prefix="hil-farm-health-") as tmp:
        try:
            for place in places:
                cmd = [sys.executable, "-m", "hil.farm", "check", "--lg-env", os.path.abspath(env_file),
                       "--place", place]
                if coordinator:
                    cmd += ["--coordinator", coordinator]
                if log_dir:
                    cmd += ["--log", os.path.abspath(os.path.join(log_dir, place))]
                out = open(Path(tmp) / f"{place}.out", "w+")
                env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0", "PYTHONUNBUFFERED": "1"}
                procs[place] = (subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                                                 stderr=subprocess.STDOUT, env=env, start_new_session=True), out)
            deadline = time.monotonic() + timeout
            results = {}
            for place, (proc, out) in procs.items():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _kill(proc)
                    results[place] = Health(place=place, healthy=False, seconds=timeout,
                                            message=f"the health check did not finish within {timeout:g} s "
                                                    "(--health-timeout): the board hangs or boots far too slowly")
                    continue
                out.seek(0)
                results[place] = _read_result(place, out.read(), proc.returncode)
            return results
        finally:  # an interrupted run leaves no health check behind
            for proc, out in procs.values():
                _kill(proc)
                out.close()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _read_result(place: str, output: str, returncode: int) -> Health:
    for line in reversed(output.splitlines()):
        if line.startswith(_RESULT):
            return Health(**json.loads(line[len(_RESULT):]))
    tail = "\n".join(output.strip().splitlines()[-10:])
    return Health(place=place, healthy=False,
                  message=f"the health check of {place} ended without a verdict (exit {returncode}):\n{tail}")


# --- hil farm ------------------------------------------------------------------------------------

def _farm_of_bench(args) -> tuple[dict, str]:
    from hil.twin import bench

    state = bench.read_state()
    if state is None:
        raise FarmError("no bench is running: start one with 'hil farm up --boards N' (or 'hil twin up --boards N')")
    return state, args.coordinator or state["coordinator"]


def _farm_up(args) -> int:
    from hil.twin import bench

    state = bench.read_state()
    if state is None:
        state = bench.up(bench.BenchConfig(boards=args.boards, base_port=args.base_port, timescale=args.timescale))
        print(f"bench up: {state['url']} with {len(state['places'])} board(s) (pid {state['pid']})")
    else:
        print(f"bench already running: {state['url']} with {len(state['places'])} board(s) (pid {state['pid']})")
    _print_farm(state, state["coordinator"])
    return 0


def _print_farm(state: dict, coordinator: str) -> None:
    places = state["places"]
    info = places_info(coordinator)
    print(f"labgrid coordinator {coordinator}, exporter '{lab.EXPORTER_NAME}'")
    for place in places:
        tags = " ".join(f"{k}={v}" for k, v in info.get(place, {}).get("tags", {}).items()) or "none"
        holder = info.get(place, {}).get("acquired")
        print(f"  place {place}: tags {tags}, {'held by ' + holder if holder else 'free'}")
    default = coordinator_address(FARM_ENV)
    coord = "" if coordinator == default else f" --lg-coordinator {coordinator}"
    listed = ",".join(places)
    print("run the suite on the farm:")
    print(f"  shard (each test once):    pytest --lg-env env/farm.yaml{coord} --places {listed} tests")
    print(f"  fan-out (every board):     pytest --lg-env env/farm.yaml{coord} --places {listed} --dist each tests")
    print(f"  by tags:                   pytest --lg-env env/farm.yaml{coord} --place-tags board=rk3576 "
          f"-n {len(places)} tests")
    print(f"  one board:                 LG_PLACE={places[0]} pytest --lg-env env/farm.yaml{coord} tests")
    print(f"by hand: labgrid-client -x {coordinator} places; "
          f"LG_PLACE={places[0]} labgrid-client -c env/farm.yaml{' -x ' + coordinator if coord else ''} acquire")


def _farm_status(args) -> int:
    state, coordinator = _farm_of_bench(args)
    _print_farm(state, coordinator)
    return 0


def _farm_health(args) -> int:
    coordinator = coordinator_address(args.lg_env, args.coordinator)
    places = parse_places(args.places)
    acquired = acquire_places(coordinator, places)
    try:
        results = check_health(args.lg_env, places, coordinator=coordinator, log_dir=args.log, timeout=args.timeout)
    finally:
        release_places(coordinator, acquired)
    for place in places:
        h = results[place]
        verdict = f"healthy (NPU {', '.join(h.npu_cores)})" if h.healthy else f"LAB FAULT: {h.message}"
        print(f"{place}: {verdict} [{h.seconds:.1f} s]")
    return 0 if all(h.healthy for h in results.values()) else 1


def _check(args) -> int:
    """``python -m hil.farm check``: one place, in this process; the verdict is the last line."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    health = check(args.lg_env, args.place, coordinator=args.coordinator, log_dir=args.log)
    print(_RESULT + json.dumps(attr.asdict(health)), flush=True)
    return 0 if health.healthy else 1


def add_commands(subparsers) -> None:
    """``hil farm up|status|health``, added to the ``hil`` command's subparsers."""
    farm = subparsers.add_parser("farm", help="the bench's boards as a labgrid farm (places for pytest-xdist)")
    _add_farm_commands(farm.add_subparsers(dest="farm_command", required=True))


def _add_farm_commands(sub) -> None:
    from hil.twin import bench

    u = sub.add_parser("up", help="start the bench unless one runs, and show its coordinator, places and commands",
                       description="The bench runs a labgrid coordinator and an exporter that publish its boards as "
                                   "places twin-1..twin-N (tags board=rk3576); this prints how to run the suite "
                                   "on them.")
    u.add_argument("--boards", type=int, default=2)
    u.add_argument("--base-port", type=int, default=bench.DEFAULT_BASE_PORT)
    u.add_argument("--timescale", type=float, default=1.0)
    u.set_defaults(func=_guard(_farm_up))
    s = sub.add_parser("status", help="the running bench's places and who holds them")
    s.add_argument("--coordinator", help="HOST:PORT (default: the running bench's)")
    s.set_defaults(func=_guard(_farm_status))
    h = sub.add_parser("health", help="boot places and read their NPU, all at once; exit 1 on a lab fault")
    h.add_argument("places", help="comma-separated places, e.g. twin-1,twin-2")
    h.add_argument("--lg-env", default=str(FARM_ENV), help="environment with RemotePlace !template '$LG_PLACE'")
    h.add_argument("--coordinator", help="HOST:PORT (default: the environment's coordinator_address)")
    h.add_argument("--timeout", type=float, default=HEALTH_TIMEOUT)
    h.add_argument("--log", help="directory for each board's console log (DIR/<place>/)")
    h.set_defaults(func=_guard(_farm_health))


def _guard(func):
    def run(args) -> int:
        from hil.twin.bench import BenchError

        try:
            return func(args)
        except (FarmError, BenchError, lab.LabError, OSError, yaml.YAMLError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hil.farm", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    _add_farm_commands(sub)
    c = sub.add_parser("check", help="health-check one acquired place in this process (used by the suite)")
    c.add_argument("--lg-env", required=True)
    c.add_argument("--place", required=True)
    c.add_argument("--coordinator")
    c.add_argument("--log")
    c.set_defaults(func=_check)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
