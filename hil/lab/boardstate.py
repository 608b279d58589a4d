"""What a soak watches between turns, read in one command: memory (the demo's resident set,
CMA and DMA-buf in use, what is available), the NPU, DDR and CPU clocks, the temperatures.

The formats are the kernel's own: ``/proc/meminfo`` (``CmaTotal:  643072 kB``),
``/proc/<pid>/status`` (``VmRSS:     1234 kB``), the last line of
``/sys/kernel/debug/dma_buf/bufinfo`` (``Total 12 objects, 4096000 bytes``, dma-buf.c), devfreq
``cur_freq`` in Hz, cpufreq ``scaling_cur_freq`` in kHz, thermal ``temp`` in millidegrees and
the ``cpuN`` lines of ``/proc/stat`` (whose difference between two readings is each cluster's
CPU use, ``hil.rockchip.cpustat``). A value the board does not have (no CMA, debugfs not
mounted) is None, never 0.
"""

from __future__ import annotations

import re
import shlex

import attr

from hil.rockchip import cpustat
from hil.rockchip.rknpu import parse_millidegrees

DMABUF_INFO = "/sys/kernel/debug/dma_buf/bufinfo"
DEVFREQ = {"npu": "/sys/class/devfreq/27700000.npu/cur_freq", "ddr": "/sys/class/devfreq/dmc/cur_freq"}
CPUFREQ_GLOB = "/sys/devices/system/cpu/cpufreq/policy*"
THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
MEMINFO_KEYS = ("MemTotal", "MemAvailable", "CmaTotal", "CmaFree")

_MEMINFO = re.compile(r"^(\w+):\s+(\d+) kB$", re.M)
_DMABUF_TOTAL = re.compile(r"^Total (\d+) objects, (\d+) bytes$", re.M)


def snapshot_command(programs: tuple[str, ...]) -> str:
    """One busybox-sh command printing the sections ``parse_snapshot`` reads; ``programs`` are the
    process names (``comm``) whose resident set to report."""
    names = " ".join(shlex.quote(p) for p in programs)
    return (
        "echo @meminfo; grep -E '^(" + "|".join(MEMINFO_KEYS) + "):' /proc/meminfo; "
        f"for p in /proc/[0-9]*; do read -r c < \"$p/comm\" 2>/dev/null || continue; for n in {names}; do "
        "[ \"$c\" = \"$n\" ] && { r=$(grep '^VmRSS:' \"$p/status\" 2>/dev/null); echo \"@rss $c ${p#/proc/} $r\"; }; "
        "done; done; "
        f"echo @dmabuf; tail -n 1 {DMABUF_INFO} 2>/dev/null; "
        + "".join(f"f=; read -r f < {path} 2>/dev/null && echo \"@freq {name} $f\"; " for name, path in DEVFREQ.items())
        + f"for d in {CPUFREQ_GLOB}; do f=; read -r f < \"$d/scaling_cur_freq\" 2>/dev/null && "
          "echo \"@cpufreq ${d##*/} $f\"; done; "
        f"for z in {THERMAL_GLOB}; do {{ read -r t < \"$z/type\" && read -r v < \"$z/temp\"; }} 2>/dev/null && "
          "echo \"@temp $t $v\"; done; "
        "echo @stat; grep '^cpu[0-9]' /proc/stat; true"
    )


@attr.s(frozen=True)
class BoardState:
    mem_total_mib = attr.ib(default=None)
    mem_available_mib = attr.ib(default=None)
    cma_used_mib = attr.ib(default=None)  # CmaTotal - CmaFree; None without CMA
    rss_mib = attr.ib(factory=dict)  # program -> the largest resident set among its processes
    dmabuf_mib = attr.ib(default=None)  # all DMA-bufs; None without debugfs
    npu_hz = attr.ib(default=None)
    ddr_hz = attr.ib(default=None)
    cpu_khz = attr.ib(factory=dict)  # cpufreq policy -> kHz
    temps_c = attr.ib(factory=dict)  # thermal zone type -> °C (the first zone of each type)
    cpu_times = attr.ib(factory=dict, repr=False)  # CPU number -> cpustat.CpuTimes: counters, not a reading

    def to_dict(self) -> dict:
        return attr.asdict(self, filter=lambda a, _: a.name != "cpu_times")


def _mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 3)


def parse_snapshot(text: str) -> BoardState:
    """The output of ``snapshot_command``."""
    meminfo_text, _, rest = text.partition("@dmabuf")
    mem = {k: int(v) for k, v in _MEMINFO.findall(meminfo_text)}
    rss: dict[str, float] = {}
    for m in re.finditer(r"^@rss (\S+) \d+ VmRSS:\s+(\d+) kB$", text, re.M):
        rss[m[1]] = max(rss.get(m[1], 0.0), _mib(int(m[2])))
    total = _DMABUF_TOTAL.search(rest)
    freqs = dict(re.findall(r"^@freq (\w+) (\d+)$", text, re.M))
    temps: dict[str, float] = {}
    for kind, milli in re.findall(r"^@temp (\S+) (-?\d+)$", text, re.M):
        temps.setdefault(kind, parse_millidegrees(milli))
    cma = mem["CmaTotal"] - mem["CmaFree"] if mem.get("CmaTotal") and "CmaFree" in mem else None
    return BoardState(mem_total_mib=_mib(mem.get("MemTotal")), mem_available_mib=_mib(mem.get("MemAvailable")),
                      cma_used_mib=_mib(cma), rss_mib=rss,
                      dmabuf_mib=round(int(total[2]) / 2**20, 3) if total else None,
                      npu_hz=int(freqs["npu"]) if "npu" in freqs else None,
                      ddr_hz=int(freqs["ddr"]) if "ddr" in freqs else None,
                      cpu_khz={p: int(k) for p, k in re.findall(r"^@cpufreq (\S+) (\d+)$", text, re.M)},
                      temps_c=temps,
                      cpu_times={cpu: t for cpu, t in cpustat.parse_stat(text.rpartition("@stat")[2]).items()
                                 if cpu != cpustat.ALL} if "@stat" in text else {})
