"""NPUDriver on the host: busybox sh as the board's shell, the rknpu module's files in a directory.

The driver's ``root`` points at a directory laid out like the board's /sys and /proc
(``localboard.write_surface``), named with a space and a quote so that an unquoted path
breaks the command. The files are plain: nothing clamps a frequency or hides
``userspace/set_freq`` under another governor, so the tests check what the driver reads
and writes, not what the kernel makes of it (selftest/twin/test_surface_guest.py does).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from labgrid import Target
from labgrid.binding import StateError

from hil.lab import NPUDriver, NPUProtocol
from hil.lab.npu import (CPUFREQ_TARGETS, DEVFREQ_TARGETS, LOAD_PATHS, VERSION_PATHS, FrequencyLock, NPUError,
                         NPUSample, clamp_to_opp, parse_samples, session_cpu)
from hil.rockchip import cpustat
from selftest.unit.localboard import BUSYBOX, ZONES, LocalCommandDriver, LocalProcessDriver, PipeProcess, write_surface
from selftest.unit.test_cpustat import KERNEL_DOC, RHEL4_TWO_FILES, sampler_field, with_ticks

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")

NPU, GPU, DMC = "27700000.npu", "27800000.gpu", "dmc"
BOOT_TEMPS = {zone: milli / 1000 for zone, milli in ZONES}


@pytest.fixture
def surface(tmp_path):
    return write_surface(tmp_path / "board root's")


@pytest.fixture
def target():
    t = Target("npu-unit")
    yield t
    t.cleanup()


@pytest.fixture
def shell(target):
    return LocalCommandDriver(target, "shell")


@pytest.fixture
def npu(target, shell, surface):
    LocalProcessDriver(target, "process")
    driver = NPUDriver(target, "npu", root=str(surface.root), timeout=7.5)
    target.activate(driver)
    return driver


# --- binding -------------------------------------------------------------------------------


def test_binds_without_a_process_driver_and_is_found_by_protocol(target, shell, surface):
    driver = NPUDriver(target, "npu", root=str(surface.root))
    assert driver.process is None
    with pytest.raises(StateError):
        driver.load()
    assert target.get_driver("NPUProtocol") is driver
    assert target.get_driver(NPUProtocol).driver_version() == "0.9.8"
    with pytest.raises(NPUError, match="ProcessProtocol"):
        driver.sample()


def test_every_command_has_the_driver_timeout(npu, shell):
    npu.driver_version()
    npu.load()
    npu.devfreq()
    npu.cpufreq(0)
    npu.temperatures()
    npu.restore(npu.lock_frequencies())
    assert len(shell.commands) >= 8
    assert {timeout for _, timeout in shell.commands} == {7.5}


# --- reads ---------------------------------------------------------------------------------


def test_driver_version_falls_back_through_the_three_files(npu, surface):
    assert npu.driver_version() == "0.9.8"
    shutil.rmtree(surface.root / "sys/kernel/debug")
    surface.write("proc/rknpu/version", "RKNPU driver: v0.9.7\n")
    assert npu.driver_version() == "0.9.7"
    shutil.rmtree(surface.root / "proc/rknpu")
    surface.write("sys/module/rknpu/version", "0.9.6\n")
    assert npu.driver_version() == "0.9.6"
    (surface.root / "sys/module/rknpu/version").unlink()
    with pytest.raises(NPUError) as e:
        npu.driver_version()
    assert all(path in str(e.value) for path in VERSION_PATHS)
    assert "is the rknpu driver loaded / debugfs mounted" in str(e.value)


def test_load_per_core(npu, surface):
    assert npu.load() == {"Core0": 0, "Core1": 0}
    surface.load(100, 7)
    assert npu.load() == {"Core0": 100, "Core1": 7}
    surface.write("sys/kernel/debug/rknpu/load", "NPU load:  Core0:   %, Core1: 35%,\n")  # blank zero
    assert npu.load() == {"Core0": 0, "Core1": 35}
    shutil.rmtree(surface.root / "sys/kernel/debug")
    surface.write("proc/rknpu/load", "NPU load:  Core0: 12%, Core1: 13%,\n")
    assert npu.load() == {"Core0": 12, "Core1": 13}
    surface.write("proc/rknpu/load", "NPU load:  5%\n")  # single-core SoCs
    assert npu.load() == {"NPU": 5}
    surface.write("proc/rknpu/load", "NPU load:  Core0: 99%, Core1: 99%, Core2: 429496%\n")  # rknpu2#102
    assert npu.load() == {"Core0": 99, "Core1": 99, "Core2": 429496}, "kept as printed, not clipped"
    surface.write("proc/rknpu/load", "garbage\n")
    with pytest.raises(NPUError, match="garbage"):
        npu.load()
    shutil.rmtree(surface.root / "proc/rknpu")
    with pytest.raises(NPUError) as e:
        npu.load()
    assert all(path in str(e.value) for path in LOAD_PATHS)


def test_devfreq(npu, surface):
    assert npu.devfreq() == {
        "cur_freq": 950_000_000,
        "available_frequencies": [m * 1_000_000 for m in (300, 400, 500, 600, 700, 800, 900, 950)],
        "governor": "rknpu_ondemand",
        "min_freq": 300_000_000,
        "max_freq": 950_000_000,
    }
    assert npu.devfreq(DMC)["available_frequencies"] == [528_000_000, 1_068_000_000, 1_560_000_000, 2_112_000_000]
    assert npu.devfreq(GPU)["governor"] == "simple_ondemand"
    shutil.rmtree(surface.root / "sys/class/devfreq" / NPU)
    with pytest.raises(NPUError) as e:
        npu.devfreq()
    assert "/sys/class/devfreq/27700000.npu" in str(e.value)
    assert "present: 27800000.gpu, dmc" in str(e.value)


def test_cpufreq(npu):
    big = npu.cpufreq(4)
    assert big["scaling_governor"] == "ondemand"
    assert big["scaling_available_frequencies"][-2:] == [2_208_000, 2_304_000]
    assert big["cpuinfo_max_freq"] == 2_304_000
    assert big["related_cpus"] == [4, 5, 6, 7]
    assert big["scaling_setspeed"] is None  # <unsupported> outside the userspace governor
    assert npu.cpufreq("policy0")["cpuinfo_max_freq"] == 2_208_000
    with pytest.raises(NPUError, match="policy6"):
        npu.cpufreq(6)


def test_temperatures(npu, surface):
    temps = npu.temperatures()
    assert temps == BOOT_TEMPS
    assert list(temps) == [zone for zone, _ in ZONES]
    surface.temp("npu-thermal", 71500)
    surface.write("sys/class/thermal/thermal_zone5/temp", "")  # a sensor that reads nothing is left out
    temps = npu.temperatures()
    assert temps["npu-thermal"] == 71.5 and "gpu-thermal" not in temps


# --- lock and restore ----------------------------------------------------------------------

SETPOINTS = {
    NPU: "sys/class/devfreq/27700000.npu/userspace/set_freq",
    GPU: "sys/class/devfreq/27800000.gpu/userspace/set_freq",
    DMC: "sys/class/devfreq/dmc/userspace/set_freq",
    "policy0": "sys/devices/system/cpu/cpufreq/policy0/scaling_setspeed",
    "policy4": "sys/devices/system/cpu/cpufreq/policy4/scaling_setspeed",
}
GOVERNORS = {
    NPU: "sys/class/devfreq/27700000.npu/governor",
    GPU: "sys/class/devfreq/27800000.gpu/governor",
    DMC: "sys/class/devfreq/dmc/governor",
    "policy0": "sys/devices/system/cpu/cpufreq/policy0/scaling_governor",
    "policy4": "sys/devices/system/cpu/cpufreq/policy4/scaling_governor",
}


def cpuidle(surface, cpus=8):
    return [surface.read(f"sys/devices/system/cpu/cpu{c}/cpuidle/state1/disable") for c in range(cpus)]


def devfreq_follows_setpoint(surface):
    """cur_freq reads what set_freq holds, so a read-back after the writes can be told apart."""
    for node in (NPU, GPU, DMC):
        cur = surface.root / "sys/class/devfreq" / node / "cur_freq"
        cur.unlink()
        os.symlink("userspace/set_freq", cur)


def test_lock_writes_what_fix_freq_writes_and_restore_puts_it_back(npu, surface):
    devfreq_follows_setpoint(surface)
    before = surface.snapshot()
    lock = npu.lock_frequencies()
    assert isinstance(lock, FrequencyLock)
    assert lock.governors == {NPU: "rknpu_ondemand", GPU: "simple_ondemand", DMC: "dmc_ondemand",
                              "policy0": "ondemand", "policy4": "ondemand"}
    assert lock.freqs == {NPU: 950_000_000, GPU: 300_000_000, DMC: 528_000_000, "policy0": 408_000,
                          "policy4": 408_000}
    assert lock.setpoints == {}
    assert lock.cpuidle == dict.fromkeys(range(8), 0)
    assert lock.targets == {**DEVFREQ_TARGETS, **CPUFREQ_TARGETS}
    assert lock.targets[NPU] == 1_000_000_000 and lock.targets["policy4"] == 2_304_000
    assert lock.missing == []
    for key, path in GOVERNORS.items():
        assert surface.read(path) == "userspace\n", key
    for key, path in SETPOINTS.items():
        assert surface.read(path) == f"{lock.targets[key]}\n", key
    assert cpuidle(surface) == ["1\n"] * 8
    # read back after the writes: the devfreq cur_freq here follows set_freq, the cpufreq one stays
    assert lock.locked == {NPU: 1_000_000_000, GPU: 950_000_000, DMC: 2_112_000_000, "policy0": 408_000,
                           "policy4": 408_000}
    # what each clock should run at: the target clamped to the board's highest OPP not above it
    assert lock.expected == {NPU: 950_000_000, GPU: 900_000_000, DMC: 2_112_000_000, "policy0": 2_208_000,
                             "policy4": 2_304_000}
    assert lock.below_expected() == {"policy0": (2_208_000, 408_000), "policy4": (2_304_000, 408_000)}

    npu.restore(lock)
    after = surface.snapshot()
    # set_freq and scaling_setspeed are the kernel's under any other governor: plain files keep them
    kernel_owned = set(SETPOINTS.values())
    assert {k: v for k, v in after.items() if k not in kernel_owned} == {
        k: v for k, v in before.items() if k not in kernel_owned}
    assert cpuidle(surface) == ["0\n"] * 8


@pytest.mark.parametrize("target,opps,expected", [
    (1_000_000_000, [300, 600, 950], 950),  # the RK3576 NPU: asked 1 GHz, tops out at 950 MHz
    (950_000_000, [300, 600, 950], 950),
    (900_000_000, [950, 300, 600], 600),  # in any order
    (200_000_000, [300, 600, 950], 300),  # below every OPP: the lowest
    (1_000_000_000, [], 1000),  # no table: the target itself
])
def test_clamp_to_opp(target, opps, expected):
    assert clamp_to_opp(target, [m * 1_000_000 for m in opps]) == expected * 1_000_000


def test_lock_expects_the_board_s_highest_operating_point(npu, surface):
    """A board whose NPU OPP table tops out below the 1 GHz target is locked at its top OPP."""
    surface.write("sys/class/devfreq/27700000.npu/available_frequencies", "300000000 600000000 800000000 \n")
    surface.write("sys/devices/system/cpu/cpufreq/policy4/scaling_available_frequencies", "\n")  # empty
    devfreq_follows_setpoint(surface)
    lock = npu.lock_frequencies()
    npu.restore(lock)
    assert lock.targets[NPU] == 1_000_000_000 and lock.expected[NPU] == 800_000_000
    assert lock.expected["policy4"] == CPUFREQ_TARGETS["policy4"], "no table: the target itself"
    assert NPU not in lock.below_expected(), "1 GHz read back (a plain file) is not below 800 MHz"


def test_a_clock_held_down_when_locking_is_below_expected(npu, surface):
    """Thermal throttling caps the NPU at 600 MHz: cur_freq reads that back right after the lock."""
    surface.write("sys/class/devfreq/27700000.npu/cur_freq", "600000000\n")
    lock = npu.lock_frequencies()
    npu.restore(lock)
    assert lock.locked[NPU] == 600_000_000, "the read-back alone looks like a clock locked at 600 MHz"
    assert lock.expected[NPU] == 950_000_000
    assert lock.below_expected()[NPU] == (950_000_000, 600_000_000)
    (surface.root / "sys/class/devfreq/27700000.npu/cur_freq").unlink()
    lock = npu.lock_frequencies()
    npu.restore(lock)
    assert lock.locked[NPU] is None and NPU not in lock.below_expected(), "nothing read back: nothing below"


def test_restore_puts_back_a_userspace_setpoint(npu, surface):
    surface.write(GOVERNORS[NPU], "userspace\n")
    surface.write(SETPOINTS[NPU], "600000000\n")
    surface.write(GOVERNORS["policy4"], "userspace\n")
    surface.write(SETPOINTS["policy4"], "1200000\n")
    surface.write("sys/devices/system/cpu/cpu3/cpuidle/state1/disable", "1\n")
    lock = npu.lock_frequencies()
    assert lock.setpoints == {NPU: 600_000_000, "policy4": 1_200_000}
    assert lock.cpuidle[3] == 1 and lock.cpuidle[2] == 0
    npu.restore(lock)
    assert surface.read(GOVERNORS[NPU]) == "userspace\n"
    assert surface.read(SETPOINTS[NPU]) == "600000000\n"
    assert surface.read(SETPOINTS["policy4"]) == "1200000\n"
    assert surface.read(GOVERNORS[GPU]) == "simple_ondemand\n"
    assert cpuidle(surface) == ["0\n"] * 3 + ["1\n"] + ["0\n"] * 4


def test_lock_skips_what_the_board_lacks(npu, surface):
    shutil.rmtree(surface.root / "sys/class/devfreq/dmc")
    shutil.rmtree(surface.root / "sys/devices/system/cpu/cpu7/cpuidle")
    lock = npu.lock_frequencies()
    assert lock.missing == ["/sys/devices/system/cpu/cpu7/cpuidle/state1/disable", "/sys/class/devfreq/dmc"]
    assert DMC not in lock.governors and DMC not in lock.locked and 7 not in lock.cpuidle
    assert cpuidle(surface, 7) == ["1\n"] * 7
    npu.restore(lock)
    assert cpuidle(surface, 7) == ["0\n"] * 7


def test_lock_needs_the_npu_devfreq_node(npu, surface):
    shutil.rmtree(surface.root / "sys/class/devfreq" / NPU)
    with pytest.raises(NPUError, match="27700000.npu/governor: is the rknpu driver loaded"):
        npu.lock_frequencies()
    assert cpuidle(surface) == ["0\n"] * 8, "nothing written"


def test_a_refused_write_undoes_the_lock(npu, surface):
    gov = surface.root / GOVERNORS[GPU]
    gov.unlink()
    os.symlink("/proc/version", gov)  # reads, refuses writes even from root, as the kernel may
    with pytest.raises(NPUError) as e:
        npu.lock_frequencies()
    msg = str(e.value)
    assert msg.startswith("could not lock the frequencies: /sys/class/devfreq/27800000.gpu/governor <- userspace:")
    assert "/sys/class/devfreq/27800000.gpu/userspace/set_freq" not in msg, "set_freq is a plain file here"
    assert "restoring failed" in msg, "the GPU governor cannot be restored either"
    assert surface.read(GOVERNORS[NPU]) == "rknpu_ondemand\n"
    assert surface.read(GOVERNORS["policy4"]) == "ondemand\n"
    assert cpuidle(surface) == ["0\n"] * 8


def test_locked_frequencies_context_restores_on_error(npu, surface):
    with pytest.raises(RuntimeError, match="inference failed"):
        with npu.locked_frequencies() as lock:
            assert surface.read(GOVERNORS[NPU]) == "userspace\n"
            assert lock.targets[NPU] == 1_000_000_000
            raise RuntimeError("inference failed")
    assert surface.read(GOVERNORS[NPU]) == "rknpu_ondemand\n"


# --- sampling ------------------------------------------------------------------------------


def test_sample_reads_both_cores_and_every_zone(npu, surface, target):
    process = npu.process
    with npu.sample(interval=0.05) as sampler:
        assert len(sampler.samples) >= 1, "the first sample is in before the body runs"
        time.sleep(0.3)
        surface.load(85, 60)
        surface.temp("npu-thermal", 71500)
        time.sleep(0.3)
        surface.load(40, 92)
        time.sleep(0.3)
        surface.load(0, 0)
        surface.temp("npu-thermal", 45000)
        time.sleep(0.3)
    samples = sampler.samples
    assert 8 <= len(samples) <= 40
    assert all(isinstance(s, NPUSample) for s in samples)
    assert samples[0].load == {"Core0": 0, "Core1": 0} and samples[0].temps == BOOT_TEMPS
    assert samples[0].raw_load == "NPU load:  Core0:  0%, Core1:  0%,"
    assert sampler.peak_load == {"Core0": 85, "Core1": 92}
    assert sampler.max_temp == {**BOOT_TEMPS, "npu-thermal": 71.5}
    assert {"Core0": 85, "Core1": 60} in [s.load for s in samples], "a sample between the changes"
    assert samples[-1].load == {"Core0": 0, "Core1": 0}
    times = [s.t for s in samples]
    assert times == sorted(times) and 0.6 < sampler.duration < 2.5, "board uptime"
    assert "NPU load:  Core0: 40%, Core1: 92%," in sampler.transcript
    assert not process.started[-1].running, "the loop is stopped on exit"


def test_sampler_leaves_a_core_above_100_percent_out_of_the_peak(npu, surface):
    """The driver's miscount (rknpu2#102: ``Core2: 429496%``) is no load: never the maximum."""
    with npu.sample(interval=0.05) as sampler:
        time.sleep(0.3)
        surface.load(70, 429496)
        time.sleep(0.3)
        surface.load(40, 20)
        time.sleep(0.3)
    assert any(s.load == {"Core0": 70, "Core1": 429496} for s in sampler.samples), "read as printed"
    assert sampler.peak_load == {"Core0": 40, "Core1": 20}
    [anomaly] = sampler.load_anomalies
    assert anomaly.startswith("Core1 read above 100 % in ") and "up to 429496 %" in anomaly


def test_sampler_keeps_reading_while_the_body_runs(npu, target):
    """The body does not read the channel; a loop blocked on a full pipe would stop sampling."""
    with npu.sample(interval=0.001) as sampler:
        time.sleep(2.0)
    per_second = len(sampler.samples) / 2.0
    line = next(line for line in sampler.transcript.split("\n") if line.startswith("@npu "))
    pipe_full = 65536 / len(line)  # samples a 64 KiB pipe holds
    assert len(sampler.samples) > pipe_full * 1.3, f"{per_second:.0f} samples/s"


def test_closing_the_sampler_stops_its_loop_when_closing_the_channel_would_not(npu, monkeypatch):
    """dropbear keeps a closed channel's pipe open and the SSH driver's kill by job token misses
    the loop's shell: the sampler kills the loop by the pid it printed first."""
    closed = []
    monkeypatch.setattr(PipeProcess, "_close", lambda self: closed.append(self))  # a close that stops nothing
    with npu.sample(interval=0.05) as sampler:
        time.sleep(0.2)
    pid = int(re.search(r"^@npu-pid (\d+)$", sampler.transcript, re.M)[1])
    [proc] = closed
    assert proc.popen.pid == pid
    assert proc.popen.wait(timeout=5) == -signal.SIGTERM, "the loop is killed by its pid"
    monkeypatch.undo()
    proc.close()


def test_sampler_needs_a_load_file(npu, surface, target):
    shutil.rmtree(surface.root / "sys/kernel/debug")
    shutil.rmtree(surface.root / "proc/rknpu")
    with pytest.raises(NPUError, match="no rknpu load file .* is the rknpu driver loaded"):
        with npu.sample(interval=0.05):
            pass
    assert not npu.process.started[-1].running


def test_sampler_that_stops_by_itself_is_an_error(npu):
    with pytest.raises(NPUError, match=r"stopped by itself \(exit status 0\) after 2 samples"):
        with npu.sample(interval=0.05, max_seconds=0.1) as sampler:
            time.sleep(0.5)
    assert len(sampler.samples) == 2


def test_parse_samples_skips_an_unfinished_line():
    text = ("@npu 12.50\tNPU load:  Core0: 10%, Core1:  0%,\tsoc-thermal=42500 npu-thermal=50250 \n"
            "noise from the shell\n"
            "@npu 13.00\tNPU load:  Core0: 20%, Core1:  0%,\tsoc-thermal=42")
    assert parse_samples(text) == [
        NPUSample(12.5, {"Core0": 10, "Core1": 0}, {"soc-thermal": 42.5, "npu-thermal": 50.25},
                  "NPU load:  Core0: 10%, Core1:  0%,")]



# --- CPU counters and clusters ---------------------------------------------------------------

# RHEL 4 Reference Guide §5.2.27: a real eight-CPU /proc/stat, whole (cpu lines, intr, ctxt, ...)
EIGHT_CPU_STAT = RHEL4_TWO_FILES.split("\n\n")[1]
# the kernel's proc.txt §1.8 example without its prompt: a two-CPU /proc/stat (as a twin booted with -smp 2)
TWO_CPU_STAT = "".join(line.strip() + "\n" for line in KERNEL_DOC.splitlines()[1:])
SHELLS = {"busybox": [BUSYBOX, "sh", "-c"] if BUSYBOX else None, "dash": [shutil.which("dash"), "-c"],
          "bash": [shutil.which("bash"), "-c"]}


def _stat_text(snap: dict) -> str:
    return "".join(f"cpu{'' if k == cpustat.ALL else k} {' '.join(map(str, v))}\n" for k, v in snap.items())


def test_sample_reads_the_cpu_counters_of_proc_stat(npu, surface):
    """The counters of every CPU, in the same line as the NPU load; a second snapshot with known
    ticks added gives the utilisation per cluster by hand."""
    surface.write("proc/stat", EIGHT_CPU_STAT)
    before = cpustat.parse_stat(EIGHT_CPU_STAT)
    # CONSTRUCTED: cpu4-7 100 ticks each, cpu4 and cpu5 fully busy (the runtime's two cores), cpu6-7 idle;
    # cpu0 10 % busy, cpu1-3 idle
    after = with_ticks(before, cpu0={"user": 10, "idle": 90}, cpu1={"idle": 100}, cpu2={"idle": 100},
                   cpu3={"idle": 100}, cpu4={"user": 90, "system": 10}, cpu5={"user": 95, "softirq": 5},
                   cpu6={"idle": 100}, cpu7={"idle": 100})
    with npu.sample(interval=0.05) as sampler:
        time.sleep(0.3)
        surface.write("proc/stat", _stat_text(after) + EIGHT_CPU_STAT[EIGHT_CPU_STAT.index("intr"):])
        time.sleep(0.3)
    samples = sampler.samples
    assert samples[0].cpu == {k: v for k, v in before.items() if k != cpustat.ALL}
    assert samples[-1].cpu == {k: v for k, v in after.items() if k != cpustat.ALL}
    assert samples[-1].load == {"Core0": 0, "Core1": 0} and samples[-1].npu_freq == 950_000_000
    cpu = session_cpu([samples], cpustat.RK3576_CLUSTERS)
    assert cpu.busy == {"policy0": [2.5], "policy4": [50.0]} and cpu.rejected("policy4") == []


@pytest.mark.parametrize("shell_name", SHELLS)
def test_the_sampler_line_in_each_shell(npu, surface, shell_name):
    """busybox ash (the twin's and Buildroot's), bash (a Debian root login) and dash: the same
    line, the CPU field being the file's cpu lines joined with ';' and nothing after them."""
    argv = SHELLS[shell_name]
    if argv is None or argv[0] is None:
        pytest.skip(f"{shell_name} is not installed")
    for stat in (EIGHT_CPU_STAT, TWO_CPU_STAT):
        surface.write("proc/stat", stat)
        out = subprocess.run([*argv, npu._sampler_script(0.01, 0.02)], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and out.stderr == "", out.stderr
        pid, *lines = out.stdout.splitlines()
        assert re.fullmatch(r"@npu-pid \d+", pid), "first the loop's pid, to stop it by"
        assert len(lines) == 2 and all(line.count("\t") == 4 for line in lines), out.stdout
        up, load, temps, freq, cpu = lines[0].removeprefix("@npu ").split("\t")
        assert re.fullmatch(r"[\d.]+", up) and load == "NPU load:  Core0:  0%, Core1:  0%," and freq == "950000000"
        assert temps.startswith("soc-thermal=") and cpu == sampler_field(stat)
        assert [s.cpu for s in parse_samples(out.stdout)] == [cpustat.parse_joined(sampler_field(stat))] * 2
    os.remove(surface.root / "proc/stat")
    out = subprocess.run([*argv, npu._sampler_script(0.01, 0.01)], capture_output=True, text=True, timeout=10)
    assert out.stdout.endswith("\t950000000\t\n") and out.stderr == "", "no /proc/stat: an empty field, no error"
    assert parse_samples(out.stdout)[0].cpu == {}


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_cpu_counters_cost_no_process_per_sample(npu, surface, tmp_path):
    """One fork per sample is the loop's sleep; reading /proc/stat adds none (one more, once:
    the probe whether this shell's read has -d)."""
    surface.write("proc/stat", EIGHT_CPU_STAT)
    trace = tmp_path / "trace"
    out = subprocess.run(["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", str(trace),
                          BUSYBOX, "sh", "-c", npu._sampler_script(0.01, 0.05)], capture_output=True, text=True,
                         timeout=20)
    if out.returncode != 0 and "ptrace" in out.stderr:
        pytest.skip(f"strace cannot trace here: {out.stderr.strip()}")
    samples = parse_samples(out.stdout)
    assert len(samples) == 5 and all(len(s.cpu) == 8 for s in samples)
    forks = [line for line in trace.read_text().splitlines() if re.search(r"\b(clone3?|v?fork)\(", line)]
    assert len(forks) == len(samples) + 1, forks


def test_cpu_clusters_from_the_cpufreq_policies_in_one_command(npu, shell, surface):
    assert npu.cpu_clusters() == {"policy0": [0, 1, 2, 3], "policy4": [4, 5, 6, 7]}
    assert len(shell.commands) == 1
    # RK3588's three policies (rknn-llm's other SoC), as related_cpus prints them
    shutil.rmtree(surface.root / "sys/devices/system/cpu/cpufreq/policy4")
    surface.write("sys/devices/system/cpu/cpufreq/policy4/related_cpus", "4 5\n")
    surface.write("sys/devices/system/cpu/cpufreq/policy6/related_cpus", "6 7\n")
    assert npu.cpu_clusters() == {"policy0": [0, 1, 2, 3], "policy4": [4, 5], "policy6": [6, 7]}


def test_cpu_clusters_without_cpufreq_are_rk3576_s(npu, surface, caplog):
    surface.write("sys/devices/system/cpu/cpufreq/policy0/related_cpus", "cpu0\n")
    assert npu.cpu_clusters() == cpustat.RK3576_CLUSTERS
    assert "a related_cpus that is no CPU list" in caplog.text
    caplog.clear()
    shutil.rmtree(surface.root / "sys/devices/system/cpu/cpufreq")
    assert npu.cpu_clusters() == cpustat.RK3576_CLUSTERS
    assert "no readable cpufreq policy" in caplog.text and "taking RK3576's clusters" in caplog.text
