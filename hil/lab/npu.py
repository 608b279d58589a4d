"""The RK3576 NPU as the suite sees it: rknpu driver files, devfreq/cpufreq clocks, thermal zones.

Everything is read and written through the board's shell (``CommandProtocol``), one command
per call where it can be, so it works the same over SSH and over a serial ``ShellDriver``.
``lock_frequencies`` does what Rockchip's ``fix_freq_rk3576.sh`` does before a benchmark,
but remembers what it changed so ``restore`` can put it back. ``sample`` runs one shell loop
on the board (through ``ProcessProtocol``) that reads the NPU load of both cores, the
thermal zones and the per-CPU counters of ``/proc/stat`` while an inference runs, the way
``eval_perf_watch_npu.sh`` watches Core0 and ``eval_perf_watch_cpu.sh`` the CPUs; with the
board's CPU clusters (``cpu_clusters``: the cpufreq policies) ``session_cpu`` makes the CPU
utilisation of each cluster over a session of it, and ``session_loads`` the chart of both.

File contents are read with the parsers of ``hil.rockchip.rknpu``; the raw lines are kept
(``NPUSample.raw_load``, ``NPUSampler.transcript``). A core the driver reads above 100 % is a
miscount, not a load: ``split_load_anomalies`` leaves such samples out of what is made of them.

Example environment entry (the ProcessProtocol binding is optional; without it ``sample``
is unavailable)::

    drivers:
      ParamikoSSHDriver: {}    # CommandProtocol and ProcessProtocol
      NPUDriver: {timeout: 30}
"""

from __future__ import annotations

import abc
import contextlib
import re
import shlex
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import attr
from labgrid.driver import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.factory import target_factory
from labgrid.step import step

from hil.lab.process import ProcessError, ProcessProtocol, RemoteProcess, describe_exit
from hil.rockchip import cpustat
from hil.rockchip.rknpu import LOAD_MAX_PCT, parse_driver_version, parse_frequencies, parse_load, parse_millidegrees

# --- board paths (vendor 6.1 kernel, rknpu 0.9.x; reference/rockchip.md §4, §5, §10) ---------
RKNPU_DEBUGFS = "/sys/kernel/debug/rknpu"
RKNPU_PROCFS = "/proc/rknpu"
VERSION_PATHS = (f"{RKNPU_DEBUGFS}/version", f"{RKNPU_PROCFS}/version", "/sys/module/rknpu/version")
LOAD_PATHS = (f"{RKNPU_DEBUGFS}/load", f"{RKNPU_PROCFS}/load")
DEVFREQ_DIR = "/sys/class/devfreq"
CPU_DIR = "/sys/devices/system/cpu"
CPUFREQ_DIR = f"{CPU_DIR}/cpufreq"
THERMAL_DIR = "/sys/class/thermal"
UPTIME = "/proc/uptime"
PROC_STAT = "/proc/stat"

NPU_DEVFREQ = "27700000.npu"
GPU_DEVFREQ = "27800000.gpu"
DDR_DEVFREQ = "dmc"

# What fix_freq_rk3576.sh writes (devfreq in Hz, cpufreq in kHz). The kernel clamps to the
# highest OPP, so cur_freq reads back e.g. 950 MHz for the NPU's 1 GHz request.
DEVFREQ_TARGETS = {NPU_DEVFREQ: 1_000_000_000, GPU_DEVFREQ: 950_000_000, DDR_DEVFREQ: 2_112_000_000}
CPUFREQ_TARGETS = {"policy0": 2_208_000, "policy4": 2_304_000}
CPUIDLE_CPUS = tuple(range(8))
CPUIDLE_STATE = "state1"  # the vendor DTS CPU_SLEEP state; the script disables it on every CPU
USERSPACE = "userspace"

_Parsed = TypeVar("_Parsed")
_HINT = "is the rknpu driver loaded / debugfs mounted (and are we root)?"


class NPUError(ExecutionError):
    """A board file the NPU driver needs is missing or refused a value; the message names it."""


class NPUProtocol(abc.ABC):
    """The NPU of a board: driver version, load, clocks and temperatures."""

    @abc.abstractmethod
    def driver_version(self) -> str: ...

    @abc.abstractmethod
    def load(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def devfreq(self, node: str = NPU_DEVFREQ) -> dict: ...

    @abc.abstractmethod
    def temperatures(self) -> dict[str, float]: ...

    @abc.abstractmethod
    def lock_frequencies(self) -> "FrequencyLock": ...

    @abc.abstractmethod
    def restore(self, lock: "FrequencyLock") -> None: ...

    @abc.abstractmethod
    def sample(self, interval: float | None = None) -> "NPUSampler": ...


@attr.s(frozen=True)
class FrequencyLock:
    """What ``lock_frequencies`` changed, keyed by devfreq node (Hz) or cpufreq policy (kHz).

    ``governors``, ``freqs`` and ``setpoints`` are the state before locking (``setpoints``
    only for nodes already under the userspace governor: their set_freq / scaling_setspeed),
    ``cpuidle`` maps CPU number to its state1 ``disable`` before. ``targets`` is what was
    written and ``locked`` what cur_freq / scaling_cur_freq read back afterwards.
    ``missing`` lists board paths that were absent and skipped.

    ``expected`` is the clock each node should run at under the lock: its target clamped to
    the highest operating point not above it (``clamp_to_opp`` of available_frequencies /
    scaling_available_frequencies, read before locking; the target itself where that table
    was unreadable), as the kernel clamps it. A read-back or a later reading below it is a
    clock held down, e.g. by thermal throttling; ``locked`` alone cannot tell, as it reads
    back an already throttled clock.
    """

    governors = attr.ib(factory=dict)
    freqs = attr.ib(factory=dict)
    setpoints = attr.ib(factory=dict)
    cpuidle = attr.ib(factory=dict)
    targets = attr.ib(factory=dict)
    locked = attr.ib(factory=dict)
    missing = attr.ib(factory=list)
    expected = attr.ib(factory=dict)

    def below_expected(self) -> dict:
        """Node -> (expected, read back) for each node that read back below what it was
        locked to (held down already when locked)."""
        return {key: (want, self.locked[key]) for key, want in self.expected.items()
                if self.locked.get(key) is not None and self.locked[key] < want}


@attr.s(frozen=True)
class NPUSample:
    """One reading of the sampler: board uptime in s, load per core ("Core0") in %, zone type -> °C."""

    t = attr.ib()
    load = attr.ib()
    temps = attr.ib()
    raw_load = attr.ib(default="")  # the rknpu line as read
    npu_freq = attr.ib(default=None)  # the NPU's devfreq cur_freq in Hz: below FrequencyLock.expected is throttling
    # CPU number -> its /proc/stat counters (hil.rockchip.cpustat.CpuTimes), the CPUs online at
    # that moment; {} when /proc/stat was unreadable, None for a line of a sampler without the field
    cpu = attr.ib(default=None)


# --- small helpers ---------------------------------------------------------------------------

def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _ints(value: str | None) -> list[int]:
    try:
        return parse_frequencies(value or "")
    except ValueError:
        return []


def clamp_to_opp(target: int, available: Iterable[int]) -> int:
    """What devfreq and cpufreq make of a requested clock: the highest operating point not
    above it, the lowest if all are above; ``target`` itself when no table is known."""
    available = list(available)
    if not available:
        return target
    fitting = [f for f in available if f <= target]
    return max(fitting) if fitting else min(available)


_READ_FN = ('r() { if v=$(cat "$1" 2>/dev/null); then printf \'@ok\\t%s\\t%s\\n\' "$1" "$v"; '
            'else printf \'@no\\t%s\\n\' "$1"; fi; }')
_WRITE_FN = ('w() { if e=$( { printf \'%s\\n\' "$2" > "$1"; } 2>&1 ); then printf \'@ok\\t%s\\n\' "$1"; '
             'else printf \'@fail\\t%s\\t%s\\n\' "$1" "$e"; fi; }')


def _lines(stdout: list[str]) -> list[str]:
    return [line.rstrip("\r") for line in stdout]


@target_factory.reg_driver
@attr.s(eq=False)
class NPUDriver(Driver, NPUProtocol):
    """Reads and sets the NPU's surface through the board's shell.

    Args:
        timeout (float): seconds each shell command may take
        root (str): prefix for every board path; "" on a board. Unit tests point it at a
            directory laid out like the board's /sys and /proc so reads, lock and restore
            run on real files.
        sample_interval (float): seconds between the sampler's readings while an inference
            runs; short enough to catch the NPU busy during a short answer's decode.
    """

    # ProcessProtocol is given as a class: labgrid resolves names only for registered
    # classes, and an environment without a process driver must still bind this one.
    bindings = {"command": "CommandProtocol", "process": {ProcessProtocol, None}}

    timeout = attr.ib(default=30.0, converter=float)
    root = attr.ib(default="", validator=attr.validators.instance_of(str))
    sample_interval = attr.ib(default=0.2, converter=float)

    def _p(self, path: str) -> str:
        return self.root.rstrip("/") + path

    def _sh(self, script: str) -> tuple[list[str], int]:
        stdout, _, rc = self.command.run(script, timeout=self.timeout)
        return _lines(stdout), rc

    def _read(self, paths: list[str]) -> dict[str, str | None]:
        """Board path -> content (None if unreadable), in one command."""
        script = _READ_FN + "; " + "; ".join(f"r {shlex.quote(self._p(p))}" for p in paths)
        lines, _ = self._sh(script)
        by_real = {self._p(p): p for p in paths}
        values: dict[str, str | None] = dict.fromkeys(paths)
        last = None
        for line in lines:
            if line.startswith("@ok\t"):
                _, real, value = line.split("\t", 2)
                last = by_real.get(real)
                if last is not None:
                    values[last] = value
            elif line.startswith("@no\t"):
                last = None
            elif last is not None:  # a value of several lines
                values[last] += "\n" + line
        return values

    def _write(self, writes: list[tuple[str, str]]) -> list[str]:
        """Write (path, value) pairs in order, all of them; returns the failures as text."""
        if not writes:
            return []
        script = _WRITE_FN + "; " + "; ".join(
            f"w {shlex.quote(self._p(p))} {shlex.quote(str(v))}" for p, v in writes)
        lines, _ = self._sh(script)
        done = {line.split("\t")[1] for line in lines if line.startswith("@ok\t")}
        failed = {}
        for line in lines:
            if line.startswith("@fail\t"):
                parts = line.split("\t", 2)
                failed[parts[1]] = parts[2].strip() if len(parts) > 2 else ""
        errors = []
        for path, value in writes:
            real = self._p(path)
            if real in failed:
                errors.append(f"{path} <- {value}: {failed[real] or 'write failed'}")
            elif real not in done:
                errors.append(f"{path} <- {value}: no answer from the board")
        return errors

    def _parse_first_readable(self, paths: tuple[str, ...], parse: Callable[[str], _Parsed], what: str) -> _Parsed:
        """``parse`` of the first of ``paths`` the board can read: the driver's files are in
        debugfs or procfs (or sysfs), depending on how the kernel was built and mounted."""
        values = self._read(list(paths))
        for path in paths:
            if values[path] is not None:
                self.logger.debug("%s from %s: %s", what, path, values[path].strip())
                try:
                    return parse(values[path])
                except ValueError as e:
                    raise NPUError(f"{path}: {e}") from None
        raise NPUError(f"no {what} readable (tried {', '.join(paths)}): {_HINT}")

    # --- reads ---------------------------------------------------------------------------
    @Driver.check_active
    @step(result=True)
    def driver_version(self) -> str:
        """The rknpu driver version, e.g. '0.9.8' (debugfs, else procfs, else /sys/module)."""
        return self._parse_first_readable(VERSION_PATHS, parse_driver_version, "rknpu driver version")

    @Driver.check_active
    @step(result=True)
    def load(self) -> dict[str, int]:
        """NPU load per core in percent over the driver's last 1 s window: {"Core0": 0, "Core1": 0}."""
        return self._parse_first_readable(LOAD_PATHS, parse_load, "rknpu load file")

    @Driver.check_active
    @step(args=["node"], result=True)
    def devfreq(self, node: str = NPU_DEVFREQ) -> dict:
        """cur_freq, min_freq, max_freq (Hz), available_frequencies (list) and governor of a devfreq node."""
        base = f"{DEVFREQ_DIR}/{node}"
        names = ("cur_freq", "available_frequencies", "governor", "min_freq", "max_freq")
        values = self._read([f"{base}/{n}" for n in names])
        if values[f"{base}/governor"] is None:
            lines, _ = self._sh(f"ls {shlex.quote(self._p(DEVFREQ_DIR))} 2>/dev/null")
            present = " ".join(lines).split()
            raise NPUError(f"no devfreq node {base} (present: {', '.join(present) or 'none'})"
                           + (f": {_HINT}" if node == NPU_DEVFREQ else ""))
        return {
            "cur_freq": _int(values[f"{base}/cur_freq"]),
            "available_frequencies": _ints(values[f"{base}/available_frequencies"]),
            "governor": values[f"{base}/governor"].strip(),
            "min_freq": _int(values[f"{base}/min_freq"]),
            "max_freq": _int(values[f"{base}/max_freq"]),
        }

    @Driver.check_active
    @step(args=["policy"], result=True)
    def cpufreq(self, policy: int | str) -> dict:
        """A cpufreq policy (0, 4 or 'policy4'): governor, frequencies in kHz, related CPUs."""
        name = policy if str(policy).startswith("policy") else f"policy{int(policy)}"
        base = f"{CPUFREQ_DIR}/{name}"
        names = ("scaling_governor", "scaling_cur_freq", "scaling_min_freq", "scaling_max_freq",
                 "scaling_available_frequencies", "scaling_setspeed", "cpuinfo_min_freq", "cpuinfo_max_freq",
                 "related_cpus")
        read = self._read([f"{base}/{n}" for n in names])
        values = {n: read[f"{base}/{n}"] for n in names}
        if values["scaling_governor"] is None:
            raise NPUError(f"no cpufreq policy {base}")
        return {
            "scaling_governor": values["scaling_governor"].strip(),
            "scaling_cur_freq": _int(values["scaling_cur_freq"]),
            "scaling_min_freq": _int(values["scaling_min_freq"]),
            "scaling_max_freq": _int(values["scaling_max_freq"]),
            "scaling_available_frequencies": _ints(values["scaling_available_frequencies"]),
            "scaling_setspeed": _int(values["scaling_setspeed"]),  # None unless userspace
            "cpuinfo_min_freq": _int(values["cpuinfo_min_freq"]),
            "cpuinfo_max_freq": _int(values["cpuinfo_max_freq"]),
            "related_cpus": _ints(values["related_cpus"]),
        }

    @Driver.check_active
    @step(result=True)
    def cpu_clusters(self) -> dict[str, list[int]]:
        """The CPU clusters as cpufreq groups them, in one command: each policy's related_cpus,
        named as ``cpustat.clusters`` names them (``{"policy0": [0, 1, 2, 3], "policy4": [4, 5, 6,
        7]}`` on RK3576). related_cpus lists offline CPUs too, so a cluster's CPUs that
        /proc/stat does not show are told apart later (``cpustat.unshown``). With no policy
        readable (a kernel without cpufreq), or one that reads no CPU list, RK3576's clusters
        (rockchip.md §10), with a warning."""
        base = shlex.quote(self._p(CPUFREQ_DIR))
        script = (f"for f in {base}/policy*/related_cpus; do v=; "
                  "{ read -r v < \"$f\" || [ -n \"$v\" ]; } 2>/dev/null || continue; p=${f%/related_cpus}; "
                  "printf '@%s\\t%s\\n' \"${p##*/}\" \"$v\"; done")
        lines, _ = self._sh(script)
        related = {}
        for line in lines:
            name, _, cpus = line.partition("\t")
            if name.startswith("@policy") and name[7:].isdigit():
                related[int(name[7:])] = cpus
        try:
            found = cpustat.clusters(related)
        except ValueError as e:
            found, why = {}, f"a related_cpus that is no CPU list ({e})"
        else:
            why = "no readable cpufreq policy"
        if not found:
            self.logger.warning("%s under %s: taking RK3576's clusters %s", why, CPUFREQ_DIR, cpustat.RK3576_CLUSTERS)
            return {name: list(cpus) for name, cpus in cpustat.RK3576_CLUSTERS.items()}
        return found

    @Driver.check_active
    @step(result=True)
    def temperatures(self) -> dict[str, float]:
        """Thermal zone type -> °C, in zone order (RK3576: soc, bigcore, little-core, ddr, npu, gpu)."""
        zones = shlex.quote(self._p(THERMAL_DIR))
        script = (f"for z in {zones}/thermal_zone*; do [ -r \"$z/type\" ] || continue; "
                  "ty=$(cat \"$z/type\" 2>/dev/null); tc=$(cat \"$z/temp\" 2>/dev/null); "
                  "printf '@%s\\t%s\\t%s\\n' \"${z##*/}\" \"$ty\" \"$tc\"; done")
        lines, _ = self._sh(script)
        temps: dict[str, float] = {}
        for line in lines:
            if not line.startswith("@"):
                continue
            zone, kind, value = (line[1:].split("\t") + ["", ""])[:3]
            try:
                celsius = parse_millidegrees(value)
            except ValueError:
                continue  # a sensor that reads nothing
            key = kind if kind and kind not in temps else f"{kind or 'zone'} ({zone})"
            temps[key] = celsius
        if not temps:
            raise NPUError(f"no readable thermal zone under {THERMAL_DIR}")
        return temps

    # --- frequencies ---------------------------------------------------------------------
    @staticmethod
    def _nodes():
        """(key, governor path, setpoint path, cur path, target) in fix_freq_rk3576.sh order."""
        def dev(node):
            b = f"{DEVFREQ_DIR}/{node}"
            return node, f"{b}/governor", f"{b}/userspace/set_freq", f"{b}/cur_freq", DEVFREQ_TARGETS[node]

        def cpu(policy):
            b = f"{CPUFREQ_DIR}/{policy}"
            return (policy, f"{b}/scaling_governor", f"{b}/scaling_setspeed", f"{b}/scaling_cur_freq",
                    CPUFREQ_TARGETS[policy])

        return [dev(NPU_DEVFREQ), cpu("policy0"), cpu("policy4"), dev(GPU_DEVFREQ), dev(DDR_DEVFREQ)]

    @staticmethod
    def _available_path(key: str) -> str:
        """The operating points a node clamps a request to (devfreq in Hz, cpufreq in kHz)."""
        if key.startswith("policy"):
            return f"{CPUFREQ_DIR}/{key}/scaling_available_frequencies"
        return f"{DEVFREQ_DIR}/{key}/available_frequencies"

    @staticmethod
    def _cpuidle_path(cpu: int) -> str:
        return f"{CPU_DIR}/cpu{cpu}/cpuidle/{CPUIDLE_STATE}/disable"

    @Driver.check_active
    @step(result=True)
    def lock_frequencies(self) -> FrequencyLock:
        """Pin NPU, CPU, GPU and DDR clocks at fix_freq_rk3576.sh's values; returns what to restore.

        Absent GPU/DDR/CPU nodes and cpuidle states are skipped (listed in ``missing``); an
        absent NPU devfreq node or any refused write is an error, after putting back what
        was already changed.
        """
        nodes = self._nodes()
        paths = ([p for n in nodes for p in (*n[1:4], self._available_path(n[0]))]
                 + [self._cpuidle_path(c) for c in CPUIDLE_CPUS])
        before = self._read(paths)
        governors, freqs, setpoints, cpuidle, targets, missing = {}, {}, {}, {}, {}, []
        expected = {}
        writes = []
        for c in CPUIDLE_CPUS:
            path = self._cpuidle_path(c)
            if before[path] is None:
                missing.append(path)
                continue
            cpuidle[c] = _int(before[path])
            writes.append((path, "1"))
        for key, gov_path, set_path, cur_path, target in nodes:
            gov = before[gov_path]
            if gov is None:
                if key == NPU_DEVFREQ:
                    raise NPUError(f"no NPU devfreq governor at {gov_path}: {_HINT}")
                missing.append(gov_path.rsplit("/", 1)[0])
                continue
            governors[key] = gov.strip()
            freqs[key] = _int(before[cur_path])
            if governors[key] == USERSPACE and _int(before[set_path]) is not None:
                setpoints[key] = _int(before[set_path])
            targets[key] = target
            opps = _ints(before[self._available_path(key)])
            if not opps:
                self.logger.warning("%s: no operating points readable; expecting the target %s itself",
                                    self._available_path(key), target)
            expected[key] = clamp_to_opp(target, opps)
            writes += [(gov_path, USERSPACE), (set_path, target)]
        lock = FrequencyLock(governors, freqs, setpoints, cpuidle, targets, {}, missing, expected)
        errors = self._write(writes)
        if errors:
            undo = self._restore_errors(lock)
            raise NPUError("could not lock the frequencies: " + "; ".join(errors)
                           + (f" (and restoring failed: {'; '.join(undo)})" if undo else " (restored)"))
        after = self._read([n[3] for n in nodes if n[0] in governors])
        locked = {n[0]: _int(after[n[3]]) for n in nodes if n[0] in governors}
        for key, value in locked.items():
            self.logger.info("%s locked at %s (asked %s, expected %s)", key, value, targets[key], expected[key])
        return attr.evolve(lock, locked=locked)

    def _restore_errors(self, lock: FrequencyLock) -> list[str]:
        writes = []
        for key, gov_path, set_path, cur_path, _ in reversed(self._nodes()):
            if key not in lock.governors:
                continue
            gov = lock.governors[key]
            if gov == USERSPACE:
                value = lock.setpoints.get(key, lock.freqs.get(key))
                writes += [(gov_path, USERSPACE)] + ([(set_path, value)] if value is not None else [])
            else:
                writes.append((gov_path, gov))
        for c, value in sorted(lock.cpuidle.items()):
            if value is not None:
                writes.append((self._cpuidle_path(c), value))
        return self._write(writes)

    @Driver.check_active
    @step()
    def restore(self, lock: FrequencyLock) -> None:
        """Put back the governors, userspace setpoints and cpuidle states saved in ``lock``; tries all."""
        errors = self._restore_errors(lock)
        if errors:
            raise NPUError("could not restore the frequencies: " + "; ".join(errors))

    @contextlib.contextmanager
    def locked_frequencies(self):
        """``with npu.locked_frequencies() as lock:`` -- restored on the way out, even on errors."""
        lock = self.lock_frequencies()
        try:
            yield lock
        finally:
            self.restore(lock)

    # --- sampling ------------------------------------------------------------------------
    @Driver.check_active
    @step(args=["interval"])
    def sample(self, interval: float | None = None, *, max_seconds: float = 7200.0,
               start_timeout: float = 15.0) -> "NPUSampler":
        """A context manager sampling load and temperatures every ``interval`` s while it is open.

        One shell loop on the board, stopped on exit (and after ``max_seconds`` in any case,
        should the connection drop without killing it).
        """
        if self.process is None:
            raise NPUError("sampling needs a ProcessProtocol driver (e.g. over SSH) on the target")
        interval = self.sample_interval if interval is None else interval
        if interval <= 0:
            raise ValueError("interval must be positive")
        return NPUSampler(self, self._sampler_script(interval, max_seconds), start_timeout)

    def _sampler_script(self, interval: float, max_seconds: float = 7200.0) -> str:
        """The board-side loop, one line per sample::

            @npu <uptime>\\t<load line>\\t<type=millideg ...>\\t<NPU Hz>\\t<cpu0 ...;cpu1 ...;>

        The last field is /proc/stat's ``cpuN`` lines (the CPUs online then), joined with ``;``,
        read with the shell's ``read`` only (no process per sample). Where ``read -d`` works
        (busybox ash, bash) each line's first word is read alone, so the long ``intr`` line
        that follows the cpu lines is never read: only its first five bytes (busybox reads a
        file byte by byte). A shell without it (dash) reads whole lines up to ``intr``.

        The first line, ``@npu-pid <pid>``, is the loop's shell: closing the sampler kills it
        by that pid (``NPUSampler``). Closing the SSH channel does not end it (dropbear keeps
        the pipe open, so the loop's writes go on, then block), nor does the SSH driver's kill
        by job token (exported inside this shell, the token is in the environment of the
        commands the loop starts, not of the shell): on the twin each closed sampler kept
        looping, a third of a CPU each, into the sessions after it. The loop also ends at the
        first line it cannot write.
        """
        loads = " ".join(shlex.quote(self._p(p)) for p in LOAD_PATHS)
        uptime = shlex.quote(self._p(UPTIME))
        zones = shlex.quote(self._p(THERMAL_DIR))
        freq = shlex.quote(self._p(f"{DEVFREQ_DIR}/{NPU_DEVFREQ}/cur_freq"))
        stat = shlex.quote(self._p(PROC_STAT))
        count = max(1, int(max_seconds / interval))
        return (
            "echo \"@npu-pid $$\"; "
            f"L=; for f in {loads}; do if [ -r \"$f\" ]; then L=$f; break; fi; done; "
            "if [ -z \"$L\" ]; then echo '@npu-error no readable rknpu load file'; exit 3; fi; "
            "D=; (read -r -d ' ' x < /dev/null) 2>/dev/null; [ $? -le 1 ] && D=1; "
            f"n=0; while [ $n -lt {count} ]; do "
            f"read -r up _ < {uptime}; ld=; read -r ld < \"$L\"; t=; fq=; read -r fq 2>/dev/null < {freq}; "
            f"for z in {zones}/thermal_zone*; do "
            "{ read -r ty < \"$z/type\" && read -r tc < \"$z/temp\"; } 2>/dev/null && t=\"$t$ty=$tc \"; done; "
            "c=; if [ -n \"$D\" ]; then { while read -r -d ' ' cn; do case $cn in "
            "cpu) read -r cr ;; cpu[0-9]*) read -r cr; c=\"$c$cn $cr;\" ;; *) break ;; esac; "
            f"done < {stat}; }} 2>/dev/null; else {{ while read -r cn cr; do case $cn in "
            "cpu) ;; cpu[0-9]*) c=\"$c$cn $cr;\" ;; *) break ;; esac; "
            f"done < {stat}; }} 2>/dev/null; fi; "
            "printf '@npu %s\\t%s\\t%s\\t%s\\t%s\\n' \"$up\" \"$ld\" \"$t\" \"$fq\" \"$c\" || exit 0; "
            f"n=$((n + 1)); sleep {interval:g}; done"
        )


_PID = re.compile(r"^@npu-pid (\d+)$", re.M)
_SAMPLE = re.compile(r"^@npu ([\d.]+)\t([^\t\n]*)\t([^\t\n]*)(?:\t(\d*)(?:\t([^\t\n]*))?)?$", re.M)


def parse_samples(text: str) -> list[NPUSample]:
    """The sampler loop's complete lines as samples (its own format, not rknpu's). Lines of an
    older loop, without the NPU clock or the CPU field, are read too (``npu_freq``/``cpu`` None)."""
    samples = []
    for m in _SAMPLE.finditer(text):
        if m.end() >= len(text) or text[m.end()] != "\n":
            continue  # the last line is still being written
        temps = {}
        for item in m[3].split():
            kind, _, milli = item.rpartition("=")
            if kind and milli.lstrip("-").isdigit():
                temps.setdefault(kind, parse_millidegrees(milli))
        try:
            load = parse_load(m[2])
        except ValueError:
            load = {}
        cpu = cpustat.parse_joined(m[5]) if m[5] is not None else None
        samples.append(NPUSample(float(m[1]), load, temps, m[2].rstrip(), int(m[4]) if m[4] else None, cpu))
    return samples


class NPUSampler:
    """The running sampler; ``samples``, ``peak_load`` and ``max_temp`` work during and after."""

    def __init__(self, driver: NPUDriver, script: str, start_timeout: float):
        self._driver = driver
        self._script = script
        self._start_timeout = start_timeout
        self._proc: RemoteProcess | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.exit_status: int | None = None
        self.ended_early = False

    def __enter__(self) -> "NPUSampler":
        self._proc = self._driver.process.start(self._script)
        try:
            m = self._proc.expect(re.compile(r"^@npu(-error)? [^\n]*\n", re.M), self._start_timeout)
        except ProcessError as e:
            self._proc.close()
            raise NPUError(f"the NPU sampler did not start: {e}") from e
        if m[1]:
            self._proc.close()
            raise NPUError(f"the NPU sampler found no rknpu load file (tried {', '.join(LOAD_PATHS)}): {_HINT}")
        self._thread = threading.Thread(target=self._pump, name="npu-sampler", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        """Keep reading so the board's loop never blocks on a full channel."""
        while not self._stop.is_set():
            status = self._proc.wait(0.2, check=False)
            if status is not None:
                self.exit_status = status
                self.ended_early = True
                return

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.ended_early:
            try:
                self._proc.wait(0.1, check=False)  # what came since the thread's last read
            except Exception:
                if exc_type is None:
                    raise
        self._kill_loop()
        if exc_type is None:
            self._proc.close()
        else:
            self._proc.abandon()  # an error is on its way out: raise nothing over it
        self._driver.logger.info("NPU sampler: %d samples, peak load %s, max temperatures %s",
                                 len(self.samples), self.peak_load, self.max_temp)
        for anomaly in self.load_anomalies:
            self._driver.logger.warning("NPU sampler: %s", anomaly)
        if self.ended_early and exc_type is None:
            raise NPUError(f"the NPU sampler stopped by itself ({describe_exit(self.exit_status)}) after "
                           f"{len(self.samples)} samples:\n{self.transcript[-2000:]}")

    def _kill_loop(self) -> None:
        """Stop the board's loop by the pid it printed first (closing the channel does not, see
        ``NPUDriver._sampler_script``); a loop that ended by itself has nothing to stop. A kill
        that fails is told, not raised: the loop still ends after ``max_seconds``."""
        m = _PID.search(self.transcript)
        if m is None or self.ended_early:
            return
        try:
            self._driver._sh(f"kill {m[1]} 2>/dev/null; true")
        except Exception as e:  # noqa: BLE001 - the samples are in; a stray loop is no reason to lose them
            self._driver.logger.warning("NPU sampler: could not stop its loop (pid %s) on the board: %s", m[1], e)

    @property
    def transcript(self) -> str:
        """Everything the loop printed."""
        return self._proc.output if self._proc else ""

    @property
    def samples(self) -> list[NPUSample]:
        return parse_samples(self.transcript)

    @property
    def peak_load(self) -> dict[str, int]:
        """Core ("Core0") -> highest load seen, samples with a core above 100 % left out."""
        return _highest(s.load for s in split_load_anomalies(self.samples)[0])

    @property
    def load_anomalies(self) -> list[str]:
        """What ``peak_load`` left out (``split_load_anomalies``)."""
        return split_load_anomalies(self.samples)[1]

    @property
    def max_temp(self) -> dict[str, float]:
        """Zone type -> highest temperature seen (°C)."""
        return _highest(s.temps for s in self.samples)

    @property
    def duration(self) -> float:
        """Board seconds between the first and the last sample."""
        samples = self.samples
        return samples[-1].t - samples[0].t if len(samples) > 1 else 0.0


def split_load_anomalies(samples: Iterable[NPUSample]) -> tuple[list[NPUSample], list[str]]:
    """``(the samples whose every core reads at most 100 %, one text per core that read above)``.

    The driver's load is busy time over 1 s, so more than 100 % is a miscount (rknpu2#102 reads
    ``Core2: 429496%``), never a load: such a sample is left out whole, so that no figure, chart
    or maximum is made of it, and each core is told once: in how many samples, how high, when.
    """
    samples = list(samples)
    kept, over = [], {}
    for s in samples:
        high = {core: pct for core, pct in s.load.items() if pct > LOAD_MAX_PCT}
        if not high:
            kept.append(s)
        for core, pct in high.items():
            n, top, first, _ = over.get(core, (0, pct, s.t, s.t))
            over[core] = (n + 1, max(top, pct), first, s.t)
    return kept, [f"{core} read above {LOAD_MAX_PCT} % in {n} of {len(samples)} samples (up to {top} %, board "
                  f"uptime {first:.1f}-{last:.1f} s): a driver miscount, left out"
                  for core, (n, top, first, last) in over.items()]


@attr.s(frozen=True)
class SessionLoads:
    """The NPU load of several sampled sessions, as the load figures take it: each session's
    peak per core, one chart series over all sessions, and the samples left out as miscounts.
    With the board's CPU clusters, ``cpu`` holds each cluster's utilisation at the same times,
    to draw in the same chart."""

    peaks = attr.ib()  # core -> [peak of each session that kept a sample]
    t = attr.ib()  # s since the first kept sample
    values = attr.ib()  # core -> the load at each t
    anomalies = attr.ib()  # "session N: ..." for each core that read above 100 %
    # "CPU policy4 (Cortex-A72)" -> the cluster's busy % since the session's previous kept sample
    # at each t (None for a session's first sample); only clusters with a CPU in /proc/stat
    cpu = attr.ib(factory=dict)


def cpu_series_label(cluster: str) -> str:
    """How a cluster's line is labelled in the NPU load chart: ``CPU policy4 (Cortex-A72)``."""
    return f"CPU {cpustat.cluster_label(cluster)}"


def _interval_busy(session: list[NPUSample], clusters: Mapping[str, Iterable[int]]) -> list[dict]:
    """Each sample's cluster utilisation since the session's previous sample with CPU counters."""
    out, prev = [], None
    for s in session:
        out.append(cpustat.cluster_utilisation(prev.cpu, s.cpu, clusters) if prev is not None and s.cpu else {})
        if s.cpu:
            prev = s
    return out


def session_loads(sessions: Iterable[Iterable[NPUSample]], cores=("Core0", "Core1"),
                  clusters: Mapping[str, Iterable[int]] | None = None) -> SessionLoads:
    kept, anomalies = [], []
    for n, session in enumerate(sessions, 1):
        good, odd = split_load_anomalies(session)
        kept.append(good)
        anomalies += [f"session {n}: {a}" for a in odd]
    samples = [s for session in kept for s in session]
    t0 = samples[0].t if samples else 0.0
    cpu = {}
    if clusters:
        busy = [b for session in kept for b in _interval_busy(session, clusters)]
        for name in clusters:
            values = [b.get(name) for b in busy]
            if any(v is not None for v in values):
                cpu[cpu_series_label(name)] = values
    return SessionLoads(peaks={c: [max(s.load.get(c, 0) for s in session) for session in kept if session]
                               for c in cores},
                        t=[s.t - t0 for s in samples],
                        values={c: [s.load.get(c, 0) for s in samples] for c in cores}, anomalies=anomalies,
                        cpu=cpu)


@attr.s(frozen=True)
class SessionCpu:
    """The CPU utilisation per cluster of several sampled sessions, as its figures take it.

    ``busy``: cluster -> the busy % of each session that gave it one, from the session's first
    to its last sample with /proc/stat counters (all of the session's CPU time, model load
    included, as ``eval_perf_watch_cpu.sh`` watches the whole run). ``missing``: cluster ->
    why sessions gave it no figure (none of its CPUs in /proc/stat, counters reset);
    ``partial``: cluster -> which of its CPUs a session's figure leaves out; ``problems``: why
    sessions gave no cluster a figure (fewer than two samples with counters). Each text says
    which sessions it is about.
    """

    busy = attr.ib()
    missing = attr.ib()
    partial = attr.ib()
    problems = attr.ib()

    def rejected(self, cluster: str) -> list[str]:
        """What a cluster's figure leaves out, and why: the sessions without one."""
        return self.problems + self.missing.get(cluster, [])


def _by_sessions(found: dict[str, list[int]]) -> list[str]:
    """``{text: [session numbers]}`` as ``"sessions 1, 2: text"``."""
    return [f"session{'s' if len(ns) > 1 else ''} {', '.join(map(str, ns))}: {text}" for text, ns in found.items()]


def session_cpu(sessions: Iterable[Iterable[NPUSample]], clusters: Mapping[str, Iterable[int]]) -> SessionCpu:
    busy: dict[str, list[float]] = {name: [] for name in clusters}
    missing: dict[str, dict[str, list[int]]] = {name: {} for name in clusters}
    partial: dict[str, dict[str, list[int]]] = {name: {} for name in clusters}
    problems: dict[str, list[int]] = {}
    for n, session in enumerate(sessions, 1):
        counted = [s for s in session if s.cpu]
        if len(counted) < 2:
            why = ("no sample held /proc/stat counters (a sampler without the CPU field, or /proc/stat unreadable)"
                   if not counted else "only one sample held /proc/stat counters: no interval to measure")
            problems.setdefault(why, []).append(n)
            continue
        first, last = counted[0].cpu, counted[-1].cpu
        shown = set(first) & set(last)
        util = cpustat.cluster_utilisation(first, last, clusters)
        notes = cpustat.unshown(clusters, shown)
        for name, cpus in clusters.items():
            if util[name] is not None:
                busy[name].append(util[name])
                if name in notes:
                    partial[name].setdefault(notes[name], []).append(n)
            elif name in notes and not any(c in shown for c in cpus):
                missing[name].setdefault(notes[name], []).append(n)
            else:
                missing[name].setdefault(f"{cpustat.cluster_label(name, cpus)}: its counters went back or did "
                                         "not move between the first and the last sample (a CPU hot-plugged?)",
                                         []).append(n)
    return SessionCpu(busy=busy, missing={k: _by_sessions(v) for k, v in missing.items()},
                      partial={k: _by_sessions(v) for k, v in partial.items()}, problems=_by_sessions(problems))


def _highest(readings: Iterable[Mapping]) -> dict:
    """Key -> highest value over the readings (a key counts in the readings that have it)."""
    highest: dict[str, float] = {}
    for reading in readings:
        for key, value in reading.items():
            highest[key] = max(highest.get(key, value), value)
    return highest
