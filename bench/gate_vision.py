"""Power of the regression gate for a vision model on the virtual bench.

The gate is what ``pytest --baseline`` does to ``rknn_fps``: the FPS of the timed loops of
one ``rknn_benchmark`` run (as ``tests/test_vision.py`` measures them) compared by
``hil.measure.compare`` with those of a baseline run; a significant drop past the figure's
tolerance fails the test.

Each trial measures a fresh baseline run and then a candidate run of the same model on the
same twin board. With the bench's ``rknn-slow MODEL:5`` fault on the candidate, the gate
should flag a regression in at least 19 of 20 trials; without it, it should raise at most 1
false alarm in 20. Prints both counts, and the median change seen.

Run: .venv/bin/python bench/gate_vision.py [--trials 20] [--slowdown 5] [--model yolov5s_rk3576] [--loops 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gate_power import wait_fault  # noqa: E402
from hil.kit import pictures  # noqa: E402
from hil.kit import vision as kitvision  # noqa: E402
from hil.measure.compare import compare  # noqa: E402
from hil.measure.figure import Measurement  # noqa: E402
from hil.measure.limits import DEFAULT_TOLERANCE_PCT  # noqa: E402
from hil.paths import twin_vision_dirs  # noqa: E402
from hil.suite import vision  # noqa: E402
from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402

FIGURE = "rknn_fps"
FAULT = "rknn-slow"


def session(driver, layout: vision.VisionLayout, model, loops: int) -> list[float]:
    """One speed run as the suite makes it (core mask 1): the FPS of each timed loop."""
    return vision.fps_of(driver.benchmark(layout.benchmark_dir, layout.model(model), loops=loops,
                                          core_mask=vision.SINGLE))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--slowdown", type=float, default=5.0, help="rknn-slow fault in percent")
    p.add_argument("--model", default="yolov5s_rk3576")
    p.add_argument("--loops", type=int, default=20, help="timed loops per run (the driver's default)")
    p.add_argument("--timescale", type=float, default=0.05)
    args = p.parse_args()

    models_dir, bench_dir, zoo_dir = twin_vision_dirs()
    kit = kitvision.load_kit(bench_dir, models_dir, zoo_dir)
    model = kit.model(args.model)
    layout = vision.VisionLayout.under("/userdata/rk3576-hil", kit, {
        p["file"]: pictures.PICTURES_DIR / p["file"] for p in pictures.load()})
    counts = {"slowed": 0, "unchanged": 0}
    changes = {"slowed": [], "unchanged": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=1, base_port=free_base_port(28100), timescale=args.timescale,
                                      state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            bench.acquire(1)
            env = bench.environment(Path(tmp))
            target = env.get_target("main")
            target.get_driver("RK3576Strategy").transition("shell")
            ssh = target.get_driver("ParamikoSSHDriver")
            driver = target.get_driver("RKNNBenchmarkDriver")
            ssh.deploy(layout.files(), layout.remote_dir, progress=False)
            start = time.monotonic()
            for trial in range(args.trials):
                for case in ("slowed", "unchanged"):
                    base = session(driver, layout, model, args.loops)
                    if case == "slowed":
                        bench.call("PUT", f"/fault/1/{FAULT}", f"{model.name}:{args.slowdown:g}".encode())
                        wait_fault(ssh, True, FAULT)
                    try:
                        cand = session(driver, layout, model, args.loops)
                    finally:
                        if case == "slowed":
                            bench.call("DELETE", f"/fault/1/{FAULT}")
                            wait_fault(ssh, False, FAULT)
                    m = Measurement(FIGURE, cand, "FPS")
                    m.compared(compare(base, cand, better="higher", tolerance_pct=DEFAULT_TOLERANCE_PCT,
                                       baseline_run=f"trial {trial}"))
                    counts[case] += m.regressed
                    changes[case].append(m.comparison.change_pct)
                print(f"trial {trial + 1}/{args.trials}: flagged {counts['slowed']} slowed, "
                      f"{counts['unchanged']} unchanged ({time.monotonic() - start:.0f} s)", file=sys.stderr)
            target.cleanup()
        finally:
            bench.stop()
    n = args.trials
    print(f"{model.name} slowed by {args.slowdown:g} %: regression flagged in {counts['slowed']} of {n} trials "
          f"(median change {statistics.median(changes['slowed']):+.2f} %; target >= {n - n // 20})")
    print(f"no slowdown:          false alarms in {counts['unchanged']} of {n} trials "
          f"(median change {statistics.median(changes['unchanged']):+.2f} %; target <= {n // 20})")
    print(f"power {counts['slowed'] / n:.2f}, false-alarm rate {counts['unchanged'] / n:.2f} "
          f"({args.loops} timed loops per run, tolerance {DEFAULT_TOLERANCE_PCT:g} %)")


if __name__ == "__main__":
    main()
