"""The farm's commands: ``hil farm up|status|health``, and ``python -m hil.farm check`` for the health check.

``hil farm ...`` (``add_commands``) shows the farm of a running bench and the commands that
use it; ``python -m hil.farm`` (``main``) has the same commands plus ``check``, the one-place
health check that ``hil.farm.health.check_health`` runs in a subprocess per place.
"""

from __future__ import annotations

import argparse
import sys

import hil.farm
from hil.farm import FARM_ENV, HEALTH_TIMEOUT, FarmError, parse_places
from hil.farm import health as farmhealth
from hil.lab import places as placeslib
from hil.suite.env import EnvError, LabEnv
from hil.twin.lab import EXPORTER_NAME, LabError


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
    info = placeslib.places_info(coordinator)
    print(f"labgrid coordinator {coordinator}, exporter '{EXPORTER_NAME}'")
    for place in places:
        tags = " ".join(f"{k}={v}" for k, v in info.get(place, {}).get("tags", {}).items()) or "none"
        holder = info.get(place, {}).get("acquired")
        print(f"  place {place}: tags {tags}, {'held by ' + holder if holder else 'free'}")
    default = LabEnv.load(FARM_ENV).coordinator()
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
    coordinator = LabEnv.load(args.lg_env).coordinator(args.coordinator)
    places = parse_places(args.places)
    acquired = placeslib.acquire_places(coordinator, places)
    try:
        results = farmhealth.check_health(args.lg_env, places, coordinator=coordinator, log_dir=args.log,
                                          timeout=args.timeout)
    finally:
        placeslib.release_places(coordinator, acquired)
    for place in places:
        h = results[place]
        verdict = f"healthy (NPU {', '.join(h.npu_cores)})" if h.healthy else f"LAB FAULT: {h.message}"
        print(f"{place}: {verdict} [{h.seconds:.1f} s]")
    return 0 if all(h.healthy for h in results.values()) else 1


def _check(args) -> int:
    """``python -m hil.farm check``: one place, in this process; the verdict is the last line."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    health = farmhealth.check(args.lg_env, args.place, coordinator=args.coordinator, log_dir=args.log)
    print(farmhealth.result_line(health), flush=True)
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
        except (placeslib.PlaceError, BenchError, LabError, EnvError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hil.farm", description=hil.farm.__doc__.splitlines()[0])
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
