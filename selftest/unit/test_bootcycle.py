"""hil.lab.bootcycle: a boot cycle's stages, times and classification, from real console captures
fed as a board prints them; and the summary a run of cycles makes (hil.measure.endurance)."""

from __future__ import annotations

import time

import pytest
from pexpect import TIMEOUT

from hil.lab.bootcycle import SHUTDOWN, UNEXPECTED_RESET, BootCycler, StageClock
from hil.lab.strategy import Status
from hil.measure.endurance import cycle_summary
from selftest.unit.test_rockchip_bootlog import R2S_PANIC_REBOOT, RK3562_PANIC, ROCK_4D, TWIN_TWO_BOOTS

TWIN_ONE_BOOT = TWIN_TWO_BOOTS.decode()[:TWIN_TWO_BOOTS.decode().index("U-Boot", 200)]


def _feed(text: str, seconds_per_line: float = 0.1) -> StageClock:
    """The capture line by line, each arriving ``seconds_per_line`` after the last."""
    clock = StageClock(start=0.0)
    lines = text.splitlines(keepends=True)
    for n in range(1, len(lines) + 1):
        clock.update("".join(lines[:n]), n * seconds_per_line)
    return clock


def test_the_stages_of_a_real_rk3576_boot_come_in_order_with_the_time_each_first_showed():
    clock = _feed(ROCK_4D)
    assert list(clock.reached) == ["ddr", "spl", "uboot", "login"]  # a quiet kernel prints no line of its own
    times = list(clock.reached.values())
    assert times == sorted(times) and times[0] == pytest.approx(0.1)
    assert clock.last_stage == "login"


def test_a_real_panic_stops_at_the_kernel_with_its_line():
    clock = _feed(RK3562_PANIC)
    assert clock.last_stage == "kernel"
    assert clock.boot.panic.startswith("[   10.722961] Kernel panic - not syncing: panic_on_set_idle")


def test_a_panic_that_resets_the_board_shows_as_two_boots():
    clock = _feed(R2S_PANIC_REBOOT)
    assert len(clock.log.boots) == 2 and clock.log.boots[0].panic


def test_a_silent_console_has_no_stage():
    clock = _feed("")
    assert clock.reached == {} and clock.last_stage == "none" and clock.last_lines() == []


# --- a whole cycle, its console a real capture played back ---------------------------------------

class _Record:
    def __init__(self):
        self.text = ""

    def mark(self):
        return len(self.text)

    def since(self, mark):
        return self.text[mark:]


class _Console:
    def __init__(self, record, chunks):
        self.record, self.chunks = record, list(chunks)

    def read(self, size=1, timeout=0.0, max_size=None):
        if not self.chunks:
            raise TIMEOUT("nothing")
        self.record.text += self.chunks.pop(0)


class _SSH:
    def __init__(self, pstore):
        self.pstore = dict(pstore)

    def run_check(self, cmd, timeout=None):
        return list(self.pstore) if cmd.startswith("ls") else []

    def run(self, cmd, timeout=None):
        if cmd.startswith("head"):
            return self.pstore[cmd.rsplit("/", 1)[1].strip("'")].splitlines(), [], 0
        return [], [], 0


class _Target:
    def activate(self, driver):
        pass

    def deactivate(self, driver):
        pass


class _Strategy:
    def __init__(self, capture, pstore=()):
        self.record = _Record()
        self.console = _Console(self.record, capture.splitlines(keepends=True))
        self.ssh, self.target, self.boots, self.status = _SSH(pstore), _Target(), [], Status.shell

    def console_record(self):
        return self.record

    def start_boot(self, how):
        return self.record.mark(), time.monotonic()

    def login(self):
        pass


class _NPU:
    def __init__(self, load):
        self._load = load

    def load(self):
        return self._load


BOTH = {"Core0": 0, "Core1": 0}


def test_a_cycle_that_reaches_both_npu_cores_is_ok():
    strategy = _Strategy(TWIN_ONE_BOOT)
    result = BootCycler(strategy, _NPU(BOTH), silence_timeout=5).cycle(1, "power")
    assert result.ok, result
    assert list(result.reached)[-2:] == ["network", "npu"] and result.ready_s == result.reached["npu"]
    assert len(strategy.boots) == 1, "the console watchdog counts the boot"


def test_a_cycle_with_one_npu_core_stops_at_network():
    result = BootCycler(_Strategy(TWIN_ONE_BOOT), _NPU({"Core0": 0}), silence_timeout=5).cycle(3, "power")
    assert not result.ok and result.stopped_at == "network" and "Core1" in result.reason
    assert result.last_lines, "a failed cycle keeps its last console lines"


def test_a_kernel_panic_stops_the_cycle_at_the_kernel_at_once():
    result = BootCycler(_Strategy(RK3562_PANIC), _NPU(BOTH), silence_timeout=60, panic_grace=0.5).cycle(2, "power")
    assert not result.ok and result.stopped_at == "kernel" and result.reason.startswith("kernel panic: ")
    assert result.seconds < 30, "a panic must not wait for the silence timeout"


def test_a_board_that_resets_itself_after_a_panic_is_an_unexpected_reset_when_it_comes_up():
    result = BootCycler(_Strategy(RK3562_PANIC + TWIN_ONE_BOOT), _NPU(BOTH), silence_timeout=5,
                        panic_grace=5).cycle(3, "power")
    assert not result.ok and result.stopped_at == UNEXPECTED_RESET and result.boots_seen == 2
    assert "reset itself after a panic: [   10.722961] Kernel panic" in result.reason
    assert "npu" in result.reached, "it got to a usable board all the same"


def test_a_panic_on_the_way_down_stops_a_reboot_at_shutdown():
    result = BootCycler(_Strategy("reboot\n" + RK3562_PANIC), _NPU(BOTH), silence_timeout=60,
                        panic_grace=0.5).cycle(2, "reboot")
    assert not result.ok and result.stopped_at == SHUTDOWN and "panic_on_set_idle" in result.reason
    assert any("Kernel panic" in line for line in result.last_lines)


def test_a_console_that_goes_silent_stops_the_cycle_at_its_last_stage():
    text = TWIN_ONE_BOOT[:TWIN_ONE_BOOT.index("Starting kernel")]
    result = BootCycler(_Strategy(text), _NPU(BOTH), silence_timeout=1.0).cycle(1, "power")
    assert not result.ok and result.stopped_at == "uboot" and "silent for 1 s after stage uboot" in result.reason


def test_pstore_after_the_boot_makes_an_ok_boot_an_unexpected_reset():
    panic = "Panic#1 Part1\n<0>[   12.3] Kernel panic - not syncing: sysrq triggered crash\n"
    result = BootCycler(_Strategy(TWIN_ONE_BOOT, {"dmesg-ramoops-0": panic}), _NPU(BOTH),
                        silence_timeout=5).cycle(4, "power")
    assert not result.ok and result.stopped_at == UNEXPECTED_RESET
    assert result.pstore == {"dmesg-ramoops-0": panic.rstrip("\n")} and "dmesg-ramoops-0" in result.reason


def test_summary_of_cycles_groups_failures_by_stage():
    cycles = [BootCycler(_Strategy(TWIN_ONE_BOOT), _NPU(BOTH), silence_timeout=5).cycle(n, "power") for n in (1, 2)]
    cycles.append(BootCycler(_Strategy(RK3562_PANIC), _NPU(BOTH), silence_timeout=5).cycle(3, "power"))
    summary = cycle_summary(cycles)
    assert (summary.trials, summary.successes) == (3, 2) and summary.failures == {"kernel": [3]}
    assert summary.low < summary.rate < summary.high
    assert "2/3 cycles" in summary.describe() and "1 at kernel (cycle 3)" in summary.describe()


def test_a_reboot_s_shutdown_lines_are_no_boot_of_its_cycle():
    """A real board's console loglevel shows the old system going down, with kernel timestamps."""
    shutdown = ("reboot\n[ 1234.567890] systemd-shutdown[1]: Syncing filesystems and block devices.\n"
                "[ 1234.901234] reboot: Restarting system\n")
    result = BootCycler(_Strategy(shutdown + TWIN_ONE_BOOT), _NPU(BOTH), silence_timeout=5).cycle(1, "reboot")
    assert result.ok and result.boots_seen == 1, result
    cold = BootCycler(_Strategy(shutdown + TWIN_ONE_BOOT), _NPU(BOTH), silence_timeout=5).cycle(1, "power")
    assert cold.stopped_at == UNEXPECTED_RESET, "after a power cut, two boots on the console are two boots"
