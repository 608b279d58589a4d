"""The RKNN SDK's own programs for vision models, run on a board: ``rknn_benchmark`` (speed,
memory and Top-5 of any ``.rknn``) and the model zoo's detection demos (the boxes).

A board is qualified with the tools a vendor already runs, as they print: the deployed
``rknn_benchmark_Linux`` with ``LD_LIBRARY_PATH`` at its own ``lib/`` (the librknnrt it was
built with), and each demo from its own folder (it reads ``./model/coco_80_labels_list.txt``).
Both print to stdout and stderr, merged here; ``hil.rockchip.rknn_benchmark`` and
``hil.rockchip.zoo_demo`` read the output, which every run keeps whole.

A run that does not reach its end (a failure line, a crash, a timeout, a lost connection)
raises ``RKNNToolError`` carrying the run, so what the tool printed before is never lost.

Example environment entry::

    drivers:
      ParamikoSSHDriver: {}
      RKNNBenchmarkDriver: {timeout: 120, loop_timeout: 2}
"""

from __future__ import annotations

import posixpath
import shlex
import time

import attr
from labgrid.driver import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.factory import target_factory
from labgrid.step import step

from hil.lab.process import describe_exit
from hil.rockchip import rknn_benchmark, zoo_demo

SCRATCH = "out"  # below the deploy folder: where rknn_benchmark writes its rt_output*.npy


@attr.s
class ToolRun:
    """One run of a tool: what was started, what it printed (stdout and stderr), how it ended."""

    command = attr.ib()
    output = attr.ib(default="")
    status = attr.ib(default=None)  # the shell's exit status (128 + N: killed by signal N); None: no end seen
    seconds = attr.ib(default=0.0)
    parsed = attr.ib(factory=dict)  # the parser's dict
    error = attr.ib(default=None)  # why the run is not usable, or None

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class RKNNToolError(RuntimeError):
    """A tool run that did not reach its end; ``run`` holds everything it printed."""

    def __init__(self, message: str, run: ToolRun):
        super().__init__(message)
        self.run = run


@target_factory.reg_driver
@attr.s(eq=False)
class RKNNBenchmarkDriver(Driver):
    """``rknn_benchmark`` and the model zoo demos over the board's shell (SSH)."""

    bindings = {"command": "CommandProtocol"}
    timeout = attr.ib(default=120.0, converter=float)  # s: load, warm-up and what surrounds the loops
    loop_timeout = attr.ib(default=2.0, converter=float)  # s per timed loop on top of ``timeout``
    loops = attr.ib(default=20, converter=int)  # timed loops of a speed run (the tool's own default is 10)

    @Driver.check_active
    @step(args=["bench_dir", "model", "input", "loops", "core_mask"])
    def benchmark(self, bench_dir: str, model: str, input: str | None = None, loops: int = 10,
                  core_mask: int | None = None) -> ToolRun:
        """``rknn_benchmark model [input] loops [core_mask]`` from ``bench_dir``'s build; the run
        parsed, or ``RKNNToolError`` when the tool did not complete."""
        args = rknn_benchmark.argv(model, input, loops, core_mask)
        scratch = posixpath.join(posixpath.dirname(bench_dir.rstrip("/")), SCRATCH)
        program = posixpath.join(bench_dir, "rknn_benchmark")
        command = (f"mkdir -p {shlex.quote(scratch)} && cd {shlex.quote(scratch)} && "
                   f"LD_LIBRARY_PATH={shlex.quote(posixpath.join(bench_dir, 'lib'))} "
                   f"{shlex.join([program, *args])}")
        run = self._run(command, self.timeout + loops * self.loop_timeout)
        run.parsed = rknn_benchmark.parse(run.output)
        if run.error is None and not run.parsed["complete"]:
            run.error = self._why(run, run.parsed)
        if run.error is not None:
            raise RKNNToolError(f"rknn_benchmark {' '.join(args)}: {run.error}", run)
        return run

    @Driver.check_active
    @step(args=["demo_dir", "model", "image"])
    def detect(self, demo_dir: str, model: str, image: str) -> ToolRun:
        """A model zoo detection demo (``demo_dir`` is its folder, named as the program) on one
        picture; the run parsed, or ``RKNNToolError`` when it did not print its result."""
        program = posixpath.basename(demo_dir.rstrip("/"))
        command = (f"cd {shlex.quote(demo_dir)} && LD_LIBRARY_PATH=./lib "
                   f"{shlex.join([f'./{program}', *zoo_demo.argv(model, image)])}")
        run = self._run(command, self.timeout)
        run.parsed = zoo_demo.parse(run.output)
        if run.error is None and not run.parsed["complete"]:
            run.error = self._why(run, run.parsed)
        if run.error is not None:
            raise RKNNToolError(f"{program} {model} {image}: {run.error}", run)
        return run

    def _run(self, command: str, timeout: float) -> ToolRun:
        run = ToolRun(command=command)
        self.logger.info("running %s", command)
        t0 = time.monotonic()
        try:
            stdout, _, status = self.command.run(f"{command} 2>&1", timeout=timeout)
            run.output, run.status = "\n".join(stdout), status
        except (ExecutionError, TimeoutError, OSError) as e:
            run.output = "\n".join(getattr(e, "stdout", None) or [])
            run.error = f"no end within {timeout:g} s or the connection failed: {e}"
        run.seconds = time.monotonic() - t0
        return run

    @staticmethod
    def _why(run: ToolRun, parsed: dict) -> str:
        said = "; ".join(parsed.get("errors") or [])
        ended = describe_exit(run.status)
        where = parsed.get("cut_short")
        parts = [f"it {ended}"] + ([f"it said: {said}"] if said else []) + ([f"the output {where}"] if where else [])
        if not said:
            parts.append(f"last lines: {run.tail(5)!r}")
        return "; ".join(parts)
