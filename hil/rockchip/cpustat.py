"""CPU utilisation per core and per cluster from two ``/proc/stat`` snapshots.

A soak on RK3576 must tell a busy little cluster from a throttled big one: utilisation per
cluster (Cortex-A53 ``policy0`` / Cortex-A72 ``policy4``) next to the cluster clocks says whether
a slower token rate came from load moving or from the clock dropping. ``eval_perf_watch_cpu.sh``
(rockchip.md §4) only prints one process's ``pidstat`` peak divided by 8, which hides that.

Sources, and what each one says
-------------------------------
- ``fs/proc/stat.c`` ``show_stat()`` (the kernel's own source, several versions in the search
  index). **[src]** The first line ``cpu`` sums ``for_each_possible_cpu``; one ``cpuN`` line
  follows per ``for_each_online_cpu``, so **an offline CPU has no line** and the numbering has
  gaps (prometheus/procfs#84 and sysstat/sysstat#7 show real files with gaps). Ten fields:
  user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice, in USER_HZ ticks
  (older kernels print fewer: the RHEL 4 reference guide shows seven).
- ``kernel/sched/cputime.c`` ``account_guest_time()``. **[src]** Guest time is added to
  ``user`` (or ``nice``) *and* to ``guest`` (or ``guest_nice``), so the last two are already
  inside the first two and are left out of the total here.
- ``proc_stat(5)`` and ``Documentation/filesystems/proc.rst``. **[src]** iowait is time the CPU
  was idle with I/O outstanding ("the CPU will not wait for I/O to complete"), is not reliable,
  and "may decrease in certain conditions".
- ``drivers/cpufreq/cpufreq.c`` ``cpufreq_show_cpus()``. **[src]** ``related_cpus`` is the
  policy's CPUs as ``"%u "`` each, the last space replaced by a newline: ``0 1 2 3``.
- rockchip.md §10 **[src]** (the team's reference notes): RK3576 ``cpu0-3`` are Cortex-A53 in
  cpufreq ``policy0`` (capacity 485), ``cpu4-7`` Cortex-A72 in ``policy4`` (capacity 1024);
  §4: ``fix_freq_rk3576.sh`` pins exactly those two policies.

What this module decides **[inferred]**
---------------------------------------
- ``busy = total - idle - iowait`` with ``total = user + nice + system + idle + iowait + irq +
  softirq + steal``: iowait is idle time (the core could have run something), irq/softirq are
  work done on the core, steal is time the core was not ours (0 on bare metal), and guest
  time is already in user/nice. So busy is what is left of 100 % once idle and iowait are
  taken out, as with ``mpstat``'s columns.
- idle and iowait are differenced as one sum, so iowait moving into idle (the man page's
  "may decrease") does not make a negative interval.
- A counter lower in the second snapshot is a wrap when the first value sat in the top quarter
  of a 32- or 64-bit range (a 32-bit collector, or a very long uptime), and is taken modulo
  that range; otherwise it is a reset (a CPU hot-plugged back with fresh idle accounting), and
  that core's utilisation is None rather than a made-up number.
- A CPU missing from either snapshot (offline at either moment) has utilisation None. A
  cluster's utilisation sums the ticks of its cores that are usable in both snapshots; it is
  None when none is.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from hil.rockchip.text import capture_name, clean_lines, read_capture

ALL = "all"  # the key of /proc/stat's aggregate "cpu" line
# rockchip.md §10: the RK3576 cpufreq policies and their cores
RK3576_CLUSTERS: dict[str, list[int]] = {"policy0": [0, 1, 2, 3], "policy4": [4, 5, 6, 7]}
RK3576_CORES = {"policy0": "Cortex-A53", "policy4": "Cortex-A72"}

_WRAPS = (1 << 32, 1 << 64)


class CpuTimes(NamedTuple):
    """One ``/proc/stat`` cpu line, in USER_HZ ticks; fields an old kernel does not print are 0."""

    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0
    guest: int = 0
    guest_nice: int = 0


_CPU_LINE = re.compile(r"^\s*cpu(\d*)((?:\s+\d+){4,10})\s*$")
_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")  # guest/guest_nice are inside user/nice


def parse_stat(text: str) -> dict[int | str, CpuTimes]:
    """The cpu lines of one ``/proc/stat`` snapshot: ``{ALL: ..., 0: ..., 1: ...}`` (cores by
    number, the aggregate ``cpu`` line as ``ALL``). Other lines (``intr``, ``ctxt``, prompts)
    are ignored; only the first snapshot's lines count if ``text`` holds several (see
    ``snapshots``)."""
    found: dict[int | str, CpuTimes] = {}
    for line in clean_lines(text):
        if m := _CPU_LINE.match(line):
            key: int | str = int(m[1]) if m[1] else ALL
            if key in found:
                break
            found[key] = CpuTimes(*(int(v) for v in m[2].split()))
    return found


def snapshots(text: str) -> list[dict[int | str, CpuTimes]]:
    """Every snapshot in ``text``: a new one starts at each aggregate ``cpu`` line (or at a core
    seen twice), so snapshots may be separated by a blank line, a prompt, a date or nothing."""
    found: list[dict[int | str, CpuTimes]] = []
    for line in clean_lines(text):
        if m := _CPU_LINE.match(line):
            key: int | str = int(m[1]) if m[1] else ALL
            if not found or key == ALL or key in found[-1]:
                found.append({})
            found[-1][key] = CpuTimes(*(int(v) for v in m[2].split()))
    return found


def _delta(before: int, after: int) -> int | None:
    """``after - before`` for a counter, across a 32/64-bit wrap; None for a reset."""
    if after >= before:
        return after - before
    for size in _WRAPS:
        if size * 3 // 4 <= before < size and after < size:
            return after + size - before
    return None


def _ticks(before: CpuTimes, after: CpuTimes) -> tuple[int, int] | None:
    """``(busy, total)`` ticks between two lines of one CPU, or None after a reset."""
    busy = [_delta(getattr(before, f), getattr(after, f)) for f in _BUSY]
    idle = _delta(before.idle + before.iowait, after.idle + after.iowait)
    if idle is None or None in busy:
        return None
    return sum(busy), sum(busy) + idle


def _pct(ticks: tuple[int, int] | None) -> float | None:
    if ticks is None or ticks[1] <= 0:
        return None
    return round(100.0 * ticks[0] / ticks[1], 2)


def utilisation(before: Mapping[int | str, CpuTimes], after: Mapping[int | str, CpuTimes]
                ) -> dict[int | str, float | None]:
    """Busy percentage (0-100, two decimals) of every CPU in either snapshot, and of ``ALL``
    when both hold the aggregate line. None for a CPU offline in either snapshot, one whose
    counters were reset, or one with no ticks between the snapshots."""
    keys = sorted({k for k in (*before, *after) if k != ALL}, key=int)
    if ALL in before or ALL in after:
        keys.insert(0, ALL)
    return {k: _pct(_ticks(before[k], after[k])) if k in before and k in after else None for k in keys}


def cpu_list(text: str) -> list[int]:
    """The CPUs of a sysfs CPU list: ``related_cpus``/``affected_cpus`` (``0 1 2 3``) or the
    ranges of ``online``/``possible`` (``0-3,6``)."""
    cpus: set[int] = set()
    for part in re.split(r"[\s,]+", text.strip()):
        if m := re.fullmatch(r"(\d+)-(\d+)", part):
            cpus.update(range(int(m[1]), int(m[2]) + 1))
        elif part.isdigit():
            cpus.add(int(part))
        elif part:
            raise ValueError(f"not a CPU list: {text!r}")
    return sorted(cpus)


def clusters(related_cpus: Mapping[int, str]) -> dict[str, list[int]]:
    """Clusters from each CPU's (or each policy's) ``cpufreq/related_cpus`` text, keyed by the
    CPU read: ``{0: "0 1 2 3", 4: "4 5 6 7"}`` -> ``{"policy0": [0, 1, 2, 3], "policy4": [4, 5,
    6, 7]}``. A cluster is named after its first CPU, as the kernel names the policy."""
    groups = {tuple(cpu_list(text)) for text in related_cpus.values() if text.strip()}
    return {f"policy{g[0]}": list(g) for g in sorted(groups)}


def clusters_by_capacity(capacity: Mapping[int, str]) -> dict[str, list[int]]:
    """Clusters from each CPU's ``cpu_capacity`` text (``{0: "485", 4: "1024", ...}``): CPUs of
    equal capacity together, named ``capacity<N>``, smallest first. (On RK3588 two policies
    share capacity 1024; ``related_cpus`` tells them apart.)"""
    groups: dict[int, list[int]] = {}
    for cpu, text in capacity.items():
        groups.setdefault(int(text.strip()), []).append(int(cpu))
    return {f"capacity{c}": sorted(cpus) for c, cpus in sorted(groups.items())}


def cluster_utilisation(before: Mapping[int | str, CpuTimes], after: Mapping[int | str, CpuTimes],
                        cluster_map: Mapping[str, Iterable[int]] = RK3576_CLUSTERS) -> dict[str, float | None]:
    """Busy percentage of each cluster: its usable cores' busy ticks over their total ticks
    (cores offline in either snapshot, or reset, left out); None when no core is usable."""
    out: dict[str, float | None] = {}
    for name, cpus in cluster_map.items():
        ticks = [t for c in cpus if c in before and c in after and (t := _ticks(before[c], after[c]))]
        out[name] = _pct((sum(b for b, _ in ticks), sum(t for _, t in ticks))) if ticks else None
    return out


def parse_joined(text: str) -> dict[int, CpuTimes]:
    """The ``cpuN`` lines of one ``/proc/stat`` snapshot joined on one line with ``;`` (the NPU
    sampler's CPU field, ``cpu0 152822 2 34926 ...;cpu1 ...;``): ``{0: ..., 1: ...}``. Empty text
    (no ``/proc/stat`` readable) gives ``{}``; an aggregate ``cpu`` line, if any, is left out."""
    return {k: v for k, v in parse_stat(text.replace(";", "\n")).items() if k != ALL}


def cpu_ranges(cpus: Iterable[int]) -> str:
    """CPUs as sysfs lists write them: ``[0, 1, 2, 3, 6]`` -> ``"0-3,6"`` (``""`` for none)."""
    out: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(cpu)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def cluster_label(name: str, cpus: Iterable[int] | None = None) -> str:
    """``policy4 (Cortex-A72, CPUs 4-7)``: a cluster as a reader of the report knows it (the core
    type from rockchip.md §10 for RK3576's two policies)."""
    parts = [RK3576_CORES[name]] if name in RK3576_CORES else []
    if cpus is not None:
        parts.append(f"CPUs {cpu_ranges(cpus)}")
    return f"{name} ({', '.join(parts)})" if parts else name


def unshown(cluster_map: Mapping[str, Iterable[int]], shown: Iterable[int]) -> dict[str, str]:
    """Why a cluster's figure is missing or partial, for each cluster with CPUs that ``/proc/stat``
    does not show (``shown``: the CPUs it has lines for). An offline CPU has no line, nor has a
    CPU a board's (or a virtual machine's) kernel does not have while its cpufreq policies name
    it; either way the cluster's figure can only be over the CPUs shown, and with none shown
    there is no figure: never a zero."""
    shown = set(shown)
    seen = f"cpu{cpu_ranges(shown)}" if shown else "no CPU"
    out = {}
    for name, cpus in cluster_map.items():
        cpus = sorted(cpus)
        missing = [c for c in cpus if c not in shown]
        if not missing:
            continue
        label = cluster_label(name, cpus)
        if len(missing) == len(cpus):
            out[name] = (f"{label}: none of its CPUs is in /proc/stat, which shows {seen}: offline, or not "
                         "present on this board")
        else:
            present = [c for c in cpus if c in shown]
            out[name] = (f"{label}: cpu{cpu_ranges(missing)} not in /proc/stat (offline, or not present on this "
                         f"board); its figure is over cpu{cpu_ranges(present)} only")
    return out


def report(text: str, cluster_map: Mapping[str, Iterable[int]] = RK3576_CLUSTERS) -> dict | None:
    """Between the first and last snapshot in ``text``: ``{"snapshots", "cores", "clusters",
    "offline"}`` (``offline``: CPUs missing from either snapshot), or None with fewer than two."""
    found = snapshots(text)
    if len(found) < 2:
        return None
    first, last = found[0], found[-1]
    cores = utilisation(first, last)
    present = {k for k in (*first, *last) if k != ALL}
    return {
        "snapshots": len(found),
        "cores": {str(k): v for k, v in cores.items()},
        "clusters": cluster_utilisation(first, last, cluster_map),
        "offline": sorted(k for k in present if k not in first or k not in last),
    }


def main(path: str) -> int:
    """``hil parse proc-stat FILE``: utilisation per core and per RK3576 cluster between the
    first and last ``/proc/stat`` snapshot in FILE (``-`` = stdin) as JSON; 2 when the file
    cannot be read. With fewer than two snapshots it warns on stderr and prints null."""
    data = read_capture(path)
    if data is None:
        return 2
    out = report(data.decode("utf-8", errors="replace"))
    if out is None:
        print(f"warning: {capture_name(path)} holds fewer than two /proc/stat snapshots ('cpu  ...' lines "
              f"followed by 'cpuN ...' lines); utilisation needs two", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0
