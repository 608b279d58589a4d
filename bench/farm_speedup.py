"""Farm benchmark: the whole suite on one board, then sharded over two boards of the same bench.

Prints, as medians over --runs runs of `pytest --lg-env env/farm.yaml tests`, measured in
this invocation on one 2-board bench:
  - the suite's wall time on one board (`--places twin-1`, one process), the reference;
  - the same on two boards in shard mode (`--places twin-1,twin-2`, two xdist workers,
    inference tests grouped per demo session), and its speed-up over one board;
  - with --compare, the same with xdist's stock schedulers (`--dist load`, `--dist loadfile`),
    which is how the grouping was chosen, and fan-out (`--dist each`: the whole suite on both
    boards), whose ratio is board-runs per unit of time against one board.
Wall time is the whole pytest process: acquiring the places, the health check (one boot per
board), every boot, deploy and demo session, and the release. A run that fails is reported and
stops the benchmark: its time would not be the suite's.

Run: .venv/bin/python bench/farm_speedup.py [--runs 1] [--timescale 0.1] [--compare]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.farm import health as farmhealth  # noqa: E402
from hil.lab import places  # noqa: E402
from hil.paths import REPO  # noqa: E402
from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402

SUITE_TIMEOUT = 1800.0


def run_suite(bench: BenchHandle, env_file: Path, out: Path, places: str, *extra: str) -> float:
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pytest", "--lg-env", str(env_file), "tests", "--places", places,
           f"--junitxml={out / 'junit.xml'}", f"--lg-log={out / 'console'}", f"--results={out / 'results'}",
           "--history=none", "-p", "no:cacheprovider", "-q", *extra]
    env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"the suite failed on {places} {' '.join(extra)} (exit {proc.returncode}), so its time says "
                 f"nothing; its output:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--timescale", type=float, default=0.1)
    p.add_argument("--compare", action="store_true",
                   help="also time xdist's --dist load and --dist loadfile, and fan-out (--dist each)")
    a = p.parse_args()
    variants = {"one board": ("twin-1",), "two boards, shard": ("twin-1,twin-2",)}
    if a.compare:
        variants["two boards, --dist load"] = ("twin-1,twin-2", "--dist", "load")
        variants["two boards, --dist loadfile"] = ("twin-1,twin-2", "--dist", "loadfile")
        variants["two boards, fan-out"] = ("twin-1,twin-2", "--dist", "each")
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=2, base_port=free_base_port(27500), timescale=a.timescale,
                                      state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            env_file = bench.farm_env_file(Path(tmp))
            coordinator = bench.state["coordinator"]
            acquired = places.acquire_places(coordinator, ["twin-1", "twin-2"])
            try:  # warm-up: both boards boot once (page cache, first QEMU start)
                health = farmhealth.check_health(str(env_file), ["twin-1", "twin-2"], coordinator=coordinator)
            finally:
                places.release_places(coordinator, acquired)
            sick = [h.message for h in health.values() if not h.healthy]
            if sick:
                sys.exit(f"the bench's boards are not healthy: {sick}")
            for n in range(a.runs):
                for v, (name, args) in enumerate(variants.items()):
                    times[name].append(run_suite(bench, env_file, Path(tmp) / f"run{n}-variant{v}", *args))
                    print(f"  run {n + 1}: {name}: {times[name][-1]:.1f} s", flush=True)
        finally:
            bench.stop()
    ref = statistics.median(times["one board"])
    print(f"suite, timescale {a.timescale:g}, {os.cpu_count()} host CPUs:")
    for name, values in times.items():
        m = statistics.median(values)
        if name == "one board":
            ratio = "(reference)"
        elif name.endswith("fan-out"):
            ratio = f"board-runs per time {2 * ref / m:.2f}x one board"
        else:
            ratio = f"speed-up {ref / m:.2f}"
        print(f"  {name + ':':32s} median {m:6.1f} s  (min {min(values):.1f}, max {max(values):.1f}, "
              f"n={len(values)})  {ratio}")


if __name__ == "__main__":
    main()
