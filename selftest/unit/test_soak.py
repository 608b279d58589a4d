"""The soak's logic (hil.suite.soak) with the real demo stand-in run on the host under busybox, and
the board reading between windows (hil.lab.boardstate) on real kernel files: the host's own
/proc, and quoted captures of what the host cannot show (CMA, DMA-buf)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from types import SimpleNamespace


from hil.kit import prompts
from hil.kit.golden import GoldenAnswers
from hil.lab.boardstate import parse_snapshot, snapshot_command
from hil.suite.inference import InferenceRunner
from hil.suite.soak import Soak
from selftest.unit.localboard import BUSYBOX
from selftest.unit.test_rkllmdemo_driver import M2B, board, demo, kit, target  # noqa: F401 - fixtures

VERSION = "1.3.0"

# /proc/meminfo of a Qualcomm SM8750 MTP (the CMA lines of an Android kernel), from a public write-up;
# the DMA-buf total as drivers/dma-buf/dma-buf.c prints it at the end of bufinfo (6.1).
MEMINFO_WITH_CMA = """\
MemTotal:       15960204 kB
MemAvailable:    9712412 kB
CmaTotal:         643072 kB
CmaFree:          590220 kB
"""


def test_the_snapshot_reads_the_host_kernel_files_as_a_board_s():
    """The command runs under busybox against the host's real /proc and /sys."""
    comm = open("/proc/self/comm").read().strip()
    out = subprocess.run([shutil.which("busybox") or "sh", "sh", "-c", snapshot_command((comm,))][
                         0 if BUSYBOX else 1:], capture_output=True, text=True, timeout=30).stdout
    state = parse_snapshot(out)
    mem_total_kib = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal:")))
    assert state.mem_total_mib == round(mem_total_kib / 1024, 3)
    assert 0 < state.mem_available_mib <= state.mem_total_mib
    assert state.rss_mib[comm] > 1, f"our own process ({comm}, pid {os.getpid()}) has a resident set"
    assert set(state.cpu_times) == set(range(len(state.cpu_times))) and 0 in state.cpu_times, state.cpu_times
    assert state.cpu_times[0].idle > 0 and "cpu_times" not in state.to_dict(), "counters are not a reading"


def test_cma_and_dmabuf_from_captures_and_none_where_a_board_has_neither():
    text = ("@meminfo\n" + MEMINFO_WITH_CMA + "@rss demo 812 VmRSS:\t  524288 kB\n@rss demo 813 VmRSS:\t    2048 kB\n"
            "@dmabuf\nTotal 12 objects, 104857600 bytes\n@freq npu 950000000\n@freq ddr 2112000000\n"
            "@cpufreq policy0 2208000\n@cpufreq policy4 2304000\n@temp soc-thermal 51875\n@temp npu-thermal 50000\n")
    state = parse_snapshot(text)
    assert state.cma_used_mib == round((643072 - 590220) / 1024, 3)
    assert state.rss_mib == {"demo": 512.0} and state.dmabuf_mib == 100.0
    assert (state.npu_hz, state.ddr_hz, state.cpu_khz) == (950000000, 2112000000, {"policy0": 2208000,
                                                                                   "policy4": 2304000})
    assert state.temps_c == {"soc-thermal": 51.875, "npu-thermal": 50.0}
    bare = parse_snapshot("@meminfo\nMemTotal:  2023412 kB\nMemAvailable:  1500000 kB\n@dmabuf\n")
    assert bare.cma_used_mib is None and bare.dmabuf_mib is None and bare.npu_hz is None and bare.rss_mib == {}


# --- the soak with the real stand-in ------------------------------------------------------------------

class _NoSampler:
    """The NPU sampler needs the board's debugfs; the soak's logic needs only its samples."""

    @contextlib.contextmanager
    def sample(self, max_seconds=None):
        yield SimpleNamespace(samples=[])


class _HostCommand:
    """The host answers the window readings (its /proc has the stand-in's process)."""

    def run_check(self, cmd, timeout=None):
        out = subprocess.run([BUSYBOX, "sh", "-c", cmd], capture_output=True, text=True, timeout=timeout)
        return out.stdout.splitlines()


def _runner(demo, kit, golden=None):
    demo.use_bundle(VERSION)
    layout = SimpleNamespace(demo_dir=kit.bundles[VERSION], llm=kit.llm(M2B), vision=kit.vision(M2B),
                             picture=lambda name: kit.picture)
    return InferenceRunner(demo=demo, npu=_NoSampler(), layout=layout, pictures=[{"file": "cat.png"}],
                           golden=golden or GoldenAnswers(model=M2B, runtime=VERSION))


def test_a_soak_alternates_text_and_picture_turns_and_reads_the_board_every_window(demo, kit):
    windows = []
    cpus = sorted(parse_snapshot("\n".join(_HostCommand().run_check(snapshot_command(())))).cpu_times)
    result = Soak(runner=_runner(demo, kit), command=_HostCommand(), duration_s=3.0, window_s=0.8,
                  on_window=windows.append, clusters={"host": cpus, "none": [len(cpus) + 64]}).run()
    assert result.error is None and result.wrong is None, (result.error, result.wrong)
    assert len(result.turns) >= 4
    text_id, image_id = prompts.text_prompts()[0].id, prompts.image_prompts()[0].id
    assert [t.prompt_id for t in result.turns[:4]] == [text_id, image_id, text_id, image_id]
    assert all(t.decode_tps and t.prefill_tps and t.peak_memory_mib for t in result.turns), result.turns
    assert windows == result.windows and len(windows) >= 2
    assert sum(w.turns for w in windows) == len(result.turns), "every turn is in one window"
    assert all(w.board.rss_mib.get("demo", 0) > 0 for w in windows), "the stand-in's own resident set"
    # each window's CPU use from the reading before it (the first from one taken at the start):
    # the stand-in keeps the host's CPUs busy; a cluster with no CPU in /proc/stat has no figure
    assert all(0 < w.cpu_busy_pct["host"] <= 100 and w.cpu_busy_pct["none"] is None for w in windows), windows
    assert [w.index for w in windows] == list(range(len(windows)))
    assert all(a.t1 <= b.t0 + 1e-6 for a, b in zip(windows, windows[1:]))
    assert result.turns[-1].t >= 3.0 - 1.0, "it asked until its time was up"


def test_a_wrong_answer_ends_the_soak_at_its_turn(demo, kit):
    text = prompts.text_prompts()[0]
    golden = GoldenAnswers(model=M2B, runtime=VERSION, answers={"text": {text.id: "Something else entirely."}})
    result = Soak(runner=_runner(demo, kit, golden), command=_HostCommand(), duration_s=30.0, window_s=5).run()
    assert result.wrong is not None and result.wrong.n == 1 and result.wrong.prompt_id == text.id
    assert "differs from the golden answer" in result.wrong.problem
    assert len(result.turns) == 1, "no turn is asked after a wrong one"
    assert len(result.windows) == 1, "the partial window is kept"
