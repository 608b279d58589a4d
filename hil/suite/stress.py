"""Platform stress under NPU load: what Rockchip's ``rockchip-test`` runs for hours (stressapptest,
memtester, DDR and NPU frequency scaling) beside the suite's own inference, measured.

For ``duration_s``: ``stressapptest -s D -M MB -W`` and a loop of ``memtester MBM 1`` run on the
board (the image's, or a static build found in ``tools_dir``), a background loop steps the NPU
and DDR devfreq through their operating points every ``step_s`` seconds (the userspace
governor, as Rockchip's ``ddr_freq_scan.sh``/``npu_freq_scaling.sh`` do; the governors are put
back afterwards), and the reference text prompt is asked in one demo session after another,
every answer checked. Each tool's verdict is read from its own output
(``hil.rockchip.stress``); the kernel log written during the stress is scanned for Oopses,
panics, rknpu errors and NPU resets (``hil.rockchip.rknpu.scan_console``).
"""

from __future__ import annotations

import shlex
import time

import attr

from hil.kit import prompts as prompt_set
from hil.rockchip import rknpu
from hil.rockchip.stress import memtester_runs, parse_stressapptest
from hil.suite.inference import InferenceRun, repetitions

TOOLS = ("stressapptest", "memtester")
DEVFREQ_NODES = ("27700000.npu", "dmc")
DEVFREQ_DIR = "/sys/class/devfreq"
END_MARGIN_S = 60.0  # for the tools to print their verdict after their time is up


class StressError(RuntimeError):
    """The stress could not run (a tool missing); the message says what to install or deploy."""


def stepper_command(nodes=DEVFREQ_NODES, step_s: float = 2.0, duration_s: float = 60.0,
                    root: str = DEVFREQ_DIR) -> str:
    """A board loop that walks each devfreq node through its ``available_frequencies`` with the
    userspace governor for ``duration_s``, printing ``@step NODE HZ`` and its governor first
    (``@governor NODE NAME``) so that it can be put back."""
    nodes_q = " ".join(shlex.quote(n) for n in nodes)
    return (
        f"d={shlex.quote(root)}; for n in {nodes_q}; do [ -r \"$d/$n/governor\" ] && "
        "echo \"@governor $n $(cat \"$d/$n/governor\")\"; done; "
        f"end=$(( $(date +%s) + {int(duration_s)} )); i=0; while [ $(date +%s) -lt $end ]; do "
        f"for n in {nodes_q}; do f=\"$d/$n\"; [ -w \"$f/governor\" ] || continue; set -- $(cat \"$f/available_frequencies\"); "
        "[ $# -gt 0 ] || continue; k=$(( i % $# + 1 )); eval hz=\\${$k}; echo userspace > \"$f/governor\" && "
        "echo $hz > \"$f/userspace/set_freq\" && echo \"@step $n $hz\"; done; "
        f"i=$((i + 1)); sleep {step_s:g}; done"
    )


def restore_command(governors: dict[str, str], root: str = DEVFREQ_DIR) -> str:
    return "; ".join(f"echo {shlex.quote(g)} > {shlex.quote(f'{root}/{n}/governor')}"
                     for n, g in governors.items()) or "true"


@attr.s
class StressResult:
    stressapptest = attr.ib(default=None)  # hil.rockchip.stress.parse_stressapptest dict
    memtester = attr.ib(factory=list)  # one dict per memtester run
    steps = attr.ib(default=0)  # devfreq changes made
    sessions = attr.ib(factory=list)  # InferenceRun of each session
    wrong_answers = attr.ib(factory=list)  # "session N turn M: why"
    findings = attr.ib(factory=list)  # hil.rockchip.rknpu.Finding from the kernel log during the stress
    error = attr.ib(default=None)
    seconds = attr.ib(default=0.0)

    @property
    def memtester_failures(self) -> int:
        return sum(r.get("failure_count") or 0 for r in self.memtester) + sum(
            1 for r in self.memtester if r.get("status") == "FAIL" and not r.get("failure_count"))

    @property
    def stressapptest_faults(self) -> int | None:
        sat = self.stressapptest
        if not sat or sat.get("status") is None:
            return None
        return int(sat.get("hardware_incidents") or 0) + int(sat.get("errors") or 0) + (sat["status"] == "FAIL")


@attr.s(eq=False)
class PlatformStress:
    runner = attr.ib()  # hil.suite.inference.InferenceRunner
    ssh = attr.ib()  # CommandProtocol and ProcessProtocol of the board
    duration_s: float = attr.ib(converter=float)
    memory_mib: int = attr.ib(default=256)  # for stressapptest; memtester gets a quarter
    step_s: float = attr.ib(default=2.0)
    tools_dir: str | None = attr.ib(default=None)  # where static builds were deployed, else the image's PATH

    def _tool(self, name: str) -> str:
        path = f"{self.tools_dir}/{name}" if self.tools_dir else name
        out, _, status = self.ssh.run(f"command -v {shlex.quote(path)}", timeout=30)
        if status != 0 or not out:
            raise StressError(f"the board has no {name} ({'in ' + self.tools_dir if self.tools_dir else 'on its PATH'})"
                              f": install it in the image (Debian: apt install {name}) or deploy a static aarch64 "
                              "build and give its folder as the target option stress_tools")
        return out[0].strip()

    def run(self) -> StressResult:
        result = StressResult()
        try:
            sat, mt = (self._tool(t) for t in TOOLS)
        except StressError as e:
            result.error = str(e)
            return result
        start = time.monotonic()
        before = len(self.ssh.run_check("dmesg", timeout=60))
        d = int(self.duration_s)
        mt_mib = max(4, self.memory_mib // 4)
        procs = {
            "stressapptest": self.ssh.start(f"{shlex.quote(sat)} -s {d} -M {self.memory_mib} -W 2>&1"),
            "memtester": self.ssh.start(f"end=$(( $(date +%s) + {d} )); while [ $(date +%s) -lt $end ]; do "
                                        f"{shlex.quote(mt)} {mt_mib}M 1 2>&1 || break; done"),
            "stepper": self.ssh.start(stepper_command(step_s=self.step_s, duration_s=d)),
        }
        try:
            self._inference_until(start + self.duration_s, result)
            for name, proc in procs.items():
                if proc.wait(max(5.0, start + self.duration_s + END_MARGIN_S - time.monotonic()), check=False) is None:
                    result.error = f"{name} still ran {END_MARGIN_S:g} s after the stress's end"
        finally:
            for proc in procs.values():
                proc.abandon()
            outputs = {name: proc.output for name, proc in procs.items()}
            governors = dict(line.split()[1:3] for line in outputs["stepper"].splitlines()
                             if line.startswith("@governor ") and len(line.split()) >= 3)
            self.ssh.run(restore_command(governors), timeout=30)
        result.stressapptest = parse_stressapptest(outputs["stressapptest"])
        result.memtester = memtester_runs(outputs["memtester"])
        result.steps = outputs["stepper"].count("@step ")
        result.findings = rknpu.scan_console("\n".join(self.ssh.run_check("dmesg", timeout=60)[before:]))
        result.seconds = time.monotonic() - start
        return result

    def _inference_until(self, deadline: float, result: StressResult) -> None:
        golden = self.runner.golden
        prompt = prompt_set.text_prompts()[0]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            run = InferenceRun(kind="text", prompts=[prompt] * 2)
            self.runner.text_session(run)
            result.sessions.append(run)
            for rep in repetitions(run, golden.keywords(prompt), golden.text(prompt.id)):
                if rep.problem and not rep.problem.startswith("no performance table"):
                    result.wrong_answers.append(f"session {n} turn {rep.index + 1}: {rep.problem}")
            if run.error and not run.answers()[0]:
                result.wrong_answers.append(f"session {n}: {run.error}")
                return
