"""Power-cycle endurance on the virtual bench: does the success-rate gate tell a board that fails
one boot in 25 from one that does not?

Runs the suite's own cycle code (``hil.lab.bootcycle``, as ``tests/test_endurance.py`` does)
on one twin board for ``--cycles`` cold boots, twice: once with the bench's seeded
``boot-fail PCT:STAGE:SEED`` fault (a kernel that panics in PCT % of boots), once without.
Prints for each the success rate with its 95 % Wilson interval, the failures by stage, the
boot-time percentiles, and the verdict of a lower-bound limit (``--min-low``, 90 % by default:
what 50 faultless cycles can clear, at 92.9 %). The faulty run should fail it with an interval
that holds 100 - PCT; the clean one should pass.

The twin's draw is seeded, so which boots fail is known before the run (``BootFail.plan``); the
bench prints it, and how often the interval of such a draw holds the true rate over seeds
1 to 1000, since one run is one draw. The default seed, 3, draws 2 failures in 50 (4 %); seed
1 draws 6 (12 %), whose interval (76.2-94.4 %) misses 96 %, as about one draw in twenty does.

Run: .venv/bin/python bench/endurance_power_cycles.py [--cycles 50] [--fail-pct 4] [--stage kernel] [--seed 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.lab.bootcycle import BootCycler  # noqa: E402
from hil.measure.endurance import cycle_summary, success_rate  # noqa: E402
from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.board import BootFail  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402


def run(cycler: BootCycler, cycles: int, label: str):
    start = time.monotonic()
    results, aborted = cycler.run("power", cycles, on_cycle=lambda c: print(
        f"  {label} cycle {c.n}: {'ok' if c.ok else 'FAILED at ' + c.stopped_at} "
        f"({c.ready_s or c.seconds:.1f} s)", flush=True))
    s = cycle_summary(results)
    print(f"{label}: {s.describe()}")
    print(f"{label}: ready p50 {s.ready.p50:.1f} s, p95 {s.ready.p95:.1f} s, max {s.ready.max:.1f} s; "
          f"{time.monotonic() - start:.0f} s wall" + (f"; stopped early: {aborted}" if aborted else ""))
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=50)
    p.add_argument("--fail-pct", type=float, default=4.0)
    p.add_argument("--stage", default="kernel")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--min-low", type=float, default=90.0, help="the lower-bound limit in percent")
    p.add_argument("--timescale", type=float, default=0.1)
    p.add_argument("--silence", type=float, default=10.0, help="console silence that counts a boot as hung (s)")
    args = p.parse_args()
    fault = f"{args.fail_pct:g}:{args.stage}:{args.seed}"
    print(f"boot-fail {fault} fails boots {BootFail.plan(fault, args.cycles)} of the first {args.cycles}")
    truth = 1 - args.fail_pct / 100
    held = sum(low <= truth <= high for low, high in (
        success_rate(args.cycles - len(BootFail.plan(f"{args.fail_pct:g}:{args.stage}:{seed}", args.cycles)),
                     args.cycles)[1:] for seed in range(1, 1001)))
    print(f"over seeds 1-1000, the interval of {args.cycles} such cycles holds {100 * truth:g} % in {held / 10:.1f} % "
          f"of the draws (95 % is what a Wilson interval promises)")
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=1, base_port=free_base_port(28300), timescale=args.timescale,
                                      state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            bench.acquire(1)
            target = bench.environment(Path(tmp)).get_target("main")
            strategy = target.get_driver("RK3576Strategy")
            strategy.transition("shell")
            cycler = BootCycler(strategy, target.get_driver("NPUDriver"), silence_timeout=args.silence)
            verdicts = {}
            for label, fault in (("with boot-fail", fault), ("clean", None)):
                if fault:
                    bench.call("PUT", "/fault/1/boot-fail", fault.encode())
                try:
                    s = run(cycler, args.cycles, label)
                finally:
                    bench.call("DELETE", "/fault/1/boot-fail")
                low = 100 * s.low
                verdicts[label] = "pass" if low >= args.min_low else "FAIL"
                truth = 100 - args.fail_pct if fault else 100.0
                inside = 100 * s.low <= truth <= 100 * s.high
                print(f"{label}: lower bound {low:.1f} % against min {args.min_low:g} %: {verdicts[label]}; "
                      f"the interval {'holds' if inside else 'MISSES'} the true rate {truth:g} %")
            print(f"gate: faulty {verdicts['with boot-fail']}, clean {verdicts['clean']} "
                  f"(wanted FAIL and pass)")
            target.cleanup()
        finally:
            bench.stop()


if __name__ == "__main__":
    main()
