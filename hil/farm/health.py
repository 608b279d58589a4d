"""A farm's health check: boot each place to a shell and read its NPU, before a run uses it.

``check`` does one place in this process; ``check_health`` runs it for every place at once,
one subprocess each (``python -m hil.farm check``, see ``hil.farm.cli``), because labgrid
keeps one coordinator session and one set of drivers per process. The subprocess prints its
verdict as its last line (``result_line``), which ``check_health`` reads back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attr

from hil.farm import HEALTH_TIMEOUT, Health
from hil.paths import REPO

RESULT = "hil-farm-health: "  # the verdict line of ``python -m hil.farm check``


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


def result_line(health: Health) -> str:
    """The verdict of one check as ``python -m hil.farm check`` prints it, for ``check_health``."""
    return RESULT + json.dumps(attr.asdict(health))


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
        if line.startswith(RESULT):
            return Health(**json.loads(line[len(RESULT):]))
    tail = "\n".join(output.strip().splitlines()[-10:])
    return Health(place=place, healthy=False,
                  message=f"the health check of {place} ended without a verdict (exit {returncode}):\n{tail}")
