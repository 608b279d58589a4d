"""A "board" on the host for unit tests of drivers: the host's busybox sh as its shell.

``LocalCommandDriver`` (CommandProtocol) and ``LocalProcessDriver`` (ProcessProtocol) run
commands locally under busybox sh, the guest's shell, with extra environment (TWIN_ROOT,
TWIN_TIMESCALE for the stand-ins). ``PipeProcess`` is a ``RemoteProcess`` over a pipe.
``write_surface`` lays out, below a directory, the files the twin's rknpu module exposes
(hil/twin/surface.py, kmod/rknpu.c) with their contents at boot, so NPUDriver(root=...)
reads and writes real files. They are plain files: nothing clamps or reacts to writes.

The drivers are not registered with labgrid's factory (tests instantiate them directly).
"""

from __future__ import annotations

import codecs
import os
import select
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import attr
from labgrid.driver import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.driver.commandmixin import CommandMixin
from labgrid.protocol import CommandProtocol

from hil.lab.process import ProcessProtocol, RemoteProcess

BUSYBOX = shutil.which("busybox")


def _environ(extra: dict) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


@attr.s(eq=False)
class LocalCommandDriver(CommandMixin, Driver, CommandProtocol):
    """``run`` as SSHDriver has it: (stdout lines, stderr lines, exit status)."""

    env = attr.ib(factory=dict)
    commands = attr.ib(factory=list, init=False)  # (command, timeout) as run, for assertions

    def _run(self, cmd, *, timeout=30.0, codec="utf-8", decodeerrors="strict"):
        self.commands.append((cmd, timeout))
        try:
            p = subprocess.run([BUSYBOX, "sh", "-c", cmd], capture_output=True, env=_environ(self.env),
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:  # as SSH drivers report it: an ExecutionError with the output
            out = (e.stdout or b"").decode(codec, decodeerrors).splitlines()
            raise ExecutionError(f"{cmd!r} did not end within {timeout} s", out) from None
        out = p.stdout.decode(codec, decodeerrors).split("\n")
        if out[-1] == "":
            out.pop()
        err = [line for line in p.stderr.decode(codec, decodeerrors).split("\n") if line]
        return out, err, p.returncode

    @Driver.check_active
    def run(self, cmd, timeout=30.0, codec="utf-8", decodeerrors="strict"):
        return self._run(cmd, timeout=timeout, codec=codec, decodeerrors=decodeerrors)

    def get_status(self):
        return 1


class PipeProcess(RemoteProcess):
    """A local process; stdout and stderr merged into one pipe, its own process group."""

    def __init__(self, command: str, popen: subprocess.Popen):
        super().__init__(command)
        self.popen = popen
        self._fd = popen.stdout.fileno()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._eof = False

    def _recv(self, timeout: float) -> str | None:
        if self._eof:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            return None
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return ""
        data = os.read(self._fd, 65536)
        if not data:
            self._eof = True
            return self._decoder.decode(b"", final=True) or None
        return self._decoder.decode(data)

    def _send(self, data: bytes) -> None:
        try:
            self.popen.stdin.write(data)
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # it has ended; the next expect says so

    def _exit_status(self) -> int | None:
        if not self._eof:
            return None
        rc = self.popen.poll()
        if rc is None:
            return None
        return rc if rc >= 0 else 128 - rc

    def _close(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()
        for f in (self.popen.stdin, self.popen.stdout):
            try:
                f.close()
            except OSError:
                pass

    @property
    def running(self) -> bool:
        return self.popen.poll() is None


@attr.s(eq=False)
class LocalProcessDriver(Driver, ProcessProtocol):
    """``start`` under busybox sh in ``cwd``; the processes started are kept for assertions."""

    env = attr.ib(factory=dict)
    started = attr.ib(factory=list, init=False)

    @Driver.check_active
    def start(self, command, *, env=None, cwd=None):
        script = (f"cd {shlex.quote(cwd)} || exit 1\n" if cwd else "") + command
        popen = subprocess.Popen([BUSYBOX, "sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=_environ({**self.env, **(env or {})}),
                                 start_new_session=True)
        proc = PipeProcess(command, popen)
        self.started.append(proc)
        return proc


def use_busybox(bundle: Path) -> None:
    """Point the stand-ins' ``#!/bin/sh`` at busybox: they are written for ash, the host's sh may be dash."""
    for path in bundle.iterdir():
        if path.is_file() and path.read_bytes().startswith(b"#!/bin/sh\n"):
            mode = path.stat().st_mode
            path.write_bytes(f"#!{BUSYBOX} sh\n".encode() + path.read_bytes()[len(b"#!/bin/sh\n"):])
            path.chmod(mode)


# --- the rknpu module's files, as at boot on twin-good ------------------------------------------

NPU_OPPS = [300, 400, 500, 600, 700, 800, 900, 950]
GPU_OPPS = [300, 400, 500, 600, 700, 800, 900]
DMC_OPPS = [528, 1068, 1560, 2112]
LITTLE_KHZ = [408000, 600000, 816000, 1008000, 1200000, 1416000, 1608000, 1800000, 2016000, 2208000]
BIG_KHZ = LITTLE_KHZ + [2304000]
ZONES = [("soc-thermal", 42500), ("bigcore-thermal", 41600), ("little-core-thermal", 41600),
         ("ddr-thermal", 40700), ("npu-thermal", 42500), ("gpu-thermal", 40700)]
DEVFREQ = {  # node -> (governor, cur Hz, OPP MHz)
    "27700000.npu": ("rknpu_ondemand", 950_000_000, NPU_OPPS),
    "27800000.gpu": ("simple_ondemand", 300_000_000, GPU_OPPS),
    "dmc": ("dmc_ondemand", 528_000_000, DMC_OPPS),
}
DEVFREQ_GOVERNORS = "rknpu_ondemand dmc_ondemand performance powersave userspace simple_ondemand"
CPU_GOVERNORS = "conservative ondemand userspace powersave performance schedutil "


@attr.s
class Surface:
    """A directory laid out like the board's /sys and /proc (what NPUDriver.root points at)."""

    root = attr.ib(converter=Path)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: a concurrent reader sees old or new
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel.lstrip("/")).read_text()

    def load(self, core0: int, core1: int) -> None:
        line = f"NPU load:  Core0: {core0:2d}%, Core1: {core1:2d}%,\n"
        for d in ("sys/kernel/debug/rknpu", "proc/rknpu"):
            self.write(f"{d}/load", line)

    def temp(self, zone: str, millideg: int) -> None:
        n = [z for z, _ in ZONES].index(zone)
        self.write(f"sys/class/thermal/thermal_zone{n}/temp", f"{millideg}\n")

    def snapshot(self) -> dict[str, str]:
        """Every file's content, to compare the surface before and after."""
        return {str(p.relative_to(self.root)): p.read_text() for p in sorted(self.root.rglob("*"))
                if p.is_file() and not p.is_symlink()}


def write_surface(root: Path, driver_version: str = "0.9.8") -> Surface:
    s = Surface(root)
    for d in ("sys/kernel/debug/rknpu", "proc/rknpu"):
        s.write(f"{d}/version", f"RKNPU driver: v{driver_version}\n")
        s.write(f"{d}/freq", "950000000\n")
        s.write(f"{d}/volt", "875000\n")
        s.write(f"{d}/delayms", "3000\n")
        s.write(f"{d}/power", "off\n")
        s.write(f"{d}/reset", "on\n")
    s.load(0, 0)
    s.write("sys/module/rknpu/version", f"{driver_version}\n")
    for node, (governor, cur, opps) in DEVFREQ.items():
        b = f"sys/class/devfreq/{node}"
        s.write(f"{b}/governor", f"{governor}\n")
        s.write(f"{b}/cur_freq", f"{cur}\n")
        s.write(f"{b}/available_frequencies", " ".join(str(m * 1_000_000) for m in opps) + "\n")
        s.write(f"{b}/min_freq", f"{opps[0] * 1_000_000}\n")
        s.write(f"{b}/max_freq", f"{opps[-1] * 1_000_000}\n")
        s.write(f"{b}/available_governors", DEVFREQ_GOVERNORS + "\n")
        # the kernel shows userspace/ only under that governor; a plain file tree cannot
        s.write(f"{b}/userspace/set_freq", f"{cur}\n")
    for n, khz in ((0, LITTLE_KHZ), (4, BIG_KHZ)):
        b = f"sys/devices/system/cpu/cpufreq/policy{n}"
        cpus = " ".join(str(c) for c in range(n, n + 4)) + " \n"
        for name, value in (("scaling_governor", "ondemand"), ("scaling_cur_freq", khz[0]),
                            ("scaling_min_freq", khz[0]), ("scaling_max_freq", khz[-1]),
                            ("cpuinfo_min_freq", khz[0]), ("cpuinfo_max_freq", khz[-1]),
                            ("scaling_setspeed", "<unsupported>"), ("scaling_driver", "cpufreq-dt"),
                            ("related_cpus", cpus.strip() + " "), ("affected_cpus", cpus.strip() + " ")):
            s.write(f"{b}/{name}", f"{value}\n")
        s.write(f"{b}/scaling_available_frequencies", " ".join(str(k) for k in khz) + " \n")
        s.write(f"{b}/scaling_available_governors", CPU_GOVERNORS + "\n")
    for cpu in range(8):
        for state, name in ((0, "WFI"), (1, "cpu-sleep")):
            b = f"sys/devices/system/cpu/cpu{cpu}/cpuidle/state{state}"
            s.write(f"{b}/name", f"{name}\n")
            s.write(f"{b}/disable", "0\n")
    for n, (zone, millideg) in enumerate(ZONES):
        s.write(f"sys/class/thermal/thermal_zone{n}/type", f"{zone}\n")
        s.write(f"sys/class/thermal/thermal_zone{n}/temp", f"{millideg}\n")
    (s.root / "proc").mkdir(exist_ok=True)
    os.symlink("/proc/uptime", s.root / "proc/uptime")  # a clock that moves
    return s
