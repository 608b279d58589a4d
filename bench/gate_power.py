"""Power of the regression gate on the virtual bench.

The gate is what ``pytest --baseline`` does to a figure: the text benchmark of the suite
(one warm-up and --repeat turns of the same prompt in one demo session, each answer checked)
gives the samples of ``text_decode_tokens_per_s``; ``hil.measure.compare`` compares them with the
samples of a baseline session; a significant drop past the figure's tolerance fails the test.

Each trial measures a fresh baseline session and then a candidate session, on the same
twin board, so trials are independent. With the bench's ``decode-slow`` fault at 5 % on the
candidate, the gate should flag a regression in at least 19 of 20 trials; without it, it
should raise at most 1 false alarm in 20. Prints both counts, and the median change seen.

Run: .venv/bin/python bench/gate_power.py [--trials 20] [--slowdown 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.kit import bundle as deploykit  # noqa: E402
from hil.kit import pictures  # noqa: E402
from hil.kit import prompts as prompt_set  # noqa: E402
from hil.kit.golden import GoldenAnswers  # noqa: E402
from hil.measure.compare import compare  # noqa: E402
from hil.measure.limits import Limits  # noqa: E402
from hil.measure.figure import Measurement  # noqa: E402
from hil.paths import twin_demo_dir, twin_models_dir  # noqa: E402
from hil.suite.config import DEFAULT_MODEL  # noqa: E402
from hil.suite.inference import InferenceRun, InferenceRunner, repetitions  # noqa: E402
from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402

FIGURE = "text_decode_tokens_per_s"
FAULT_TIMEOUT = 30.0


def wait_fault(ssh, present: bool, fault: str = "decode-slow") -> None:
    """Wait until the guest agent has applied (or cleared) ``fault``."""
    test = "-e" if present else "! -e"
    deadline = time.monotonic() + FAULT_TIMEOUT
    while ssh.run(f"[ {test} /run/twin/fault/{fault} ]", timeout=10)[2] != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the board did not {'apply' if present else 'clear'} {fault} in {FAULT_TIMEOUT} s")
        time.sleep(0.2)


def session(runner: InferenceRunner, repeat: int) -> list[float]:
    """One benchmark session as the suite runs it: the accepted decode samples."""
    prompt = prompt_set.text_prompts()[0]
    run = runner.text_session(InferenceRun(kind="text", prompts=[prompt] * (1 + repeat)))
    reps = repetitions(run, runner.golden.keywords(prompt), runner.golden.text(prompt.id))[1:]
    bad = [r.problem for r in reps if r.problem]
    if bad or not reps:
        raise RuntimeError(f"benchmark session gave wrong output: {bad or run.error}")
    return [r.perf["generate_tokens_per_s"] for r in reps]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--slowdown", type=float, default=5.0, help="decode-slow fault in percent")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--timescale", type=float, default=0.05)
    args = p.parse_args()

    kit = deploykit.load(twin_demo_dir(), twin_models_dir())
    model = kit.model(DEFAULT_MODEL)
    picture_list = pictures.load()
    layout = deploykit.DeployLayout(remote_dir="/userdata/rk3576-hil", kit=kit, model=model,
                                    pictures={p["file"]: pictures.PICTURES_DIR / p["file"] for p in picture_list})
    limits = Limits.load().select(model=model.name, runtime=kit.runtime.rkllm_runtime)
    counts = {"slowed": 0, "unchanged": 0}
    changes = {"slowed": [], "unchanged": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=1, base_port=free_base_port(28000), timescale=args.timescale,
                                      state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            bench.acquire(1)
            env = bench.environment(Path(tmp))
            target = env.get_target("main")
            target.get_driver("RK3576Strategy").transition("shell")
            ssh = target.get_driver("ParamikoSSHDriver")
            demo, npu = target.get_driver("RKLLMDemoDriver"), target.get_driver("NPUDriver")
            demo.use_bundle(kit.runtime.demo_version)
            ssh.deploy(layout.files(), layout.remote_dir, progress=False)
            runner = InferenceRunner(demo=demo, npu=npu, layout=layout, pictures=picture_list,
                                     golden=GoldenAnswers.load(model.name, kit.runtime.rkllm_runtime))
            start = time.monotonic()
            for trial in range(args.trials):
                for case in ("slowed", "unchanged"):
                    base = session(runner, args.repeat)
                    if case == "slowed":
                        bench.call("PUT", "/fault/1/decode-slow", f"{args.slowdown:g}".encode())
                        wait_fault(ssh, True)
                    try:
                        cand = session(runner, args.repeat)
                    finally:
                        if case == "slowed":
                            bench.call("DELETE", "/fault/1/decode-slow")
                            wait_fault(ssh, False)
                    m = Measurement(FIGURE, cand, "tok/s").within(limits)
                    limit = limits.get(FIGURE)
                    m.compared(compare(base, cand, better=m.better, tolerance_pct=limit.tolerance_pct,
                                       baseline_run=f"trial {trial}"))
                    counts[case] += m.regressed
                    changes[case].append(m.comparison.change_pct)
                print(f"trial {trial + 1}/{args.trials}: flagged {counts['slowed']} slowed, "
                      f"{counts['unchanged']} unchanged ({time.monotonic() - start:.0f} s)", file=sys.stderr)
            target.cleanup()
        finally:
            bench.stop()
    n = args.trials
    print(f"decode slowed by {args.slowdown:g} %: regression flagged in {counts['slowed']} of {n} trials "
          f"(median change {statistics.median(changes['slowed']):+.2f} %; target >= {n - n // 20})")
    print(f"no slowdown:          false alarms in {counts['unchanged']} of {n} trials "
          f"(median change {statistics.median(changes['unchanged']):+.2f} %; target <= {n // 20})")
    print(f"power {counts['slowed'] / n:.2f}, false-alarm rate {counts['unchanged'] / n:.2f} "
          f"(repeat {args.repeat}, tolerance {limit.tolerance_pct:g} %)")


if __name__ == "__main__":
    main()
