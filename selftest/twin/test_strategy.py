"""The RK3576 strategy on a real twin board: U-Boot, loader (both ways in), flash, and giving up."""

from __future__ import annotations

import threading
import time

import pytest
from labgrid.binding import BindingState
from labgrid.strategy import StrategyError

from hil.lab.strategy import Status
from hil.rockchip import flashtools
from hil.lab import places


class BoardWatch:
    """Samples the bench's view of board 1 (power, maskrom button, mode) every 20 ms, as a person watching it."""

    def __init__(self, bench) -> None:
        self.bench = bench
        self.samples: list[tuple[float, bool, bool, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            board = self.bench.board(1)
            self.samples.append((time.monotonic(), board["power"], board["maskrom_button"], board["mode"]))
            self._stop.wait(0.02)

    def stop(self) -> list[tuple[float, bool, bool, str]]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=1, timescale=0.1)


@pytest.fixture
def target(bench, tmp_path):
    bench.acquire(1)
    env = bench.environment(tmp_path, 1)
    t = env.get_target("main")
    yield t
    t.cleanup()
    places.release(bench.state["coordinator"], "twin-1")


def test_uboot_then_shell_then_off(target, bench):
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("uboot")
    uboot = target.get_driver("UBootDriver")
    assert any("U-Boot" in line for line in uboot.run_check("version")), "no U-Boot version at the uboot state"
    strategy.transition("shell")
    assert strategy.last_boot.state == "shell" and strategy.last_boot.attempts == 1
    assert "Linux version" in strategy.last_boot.console, "the boot's console text was not recorded"
    ssh = target.get_driver("ParamikoSSHDriver")
    assert ssh.run_check("uname -m") == ["aarch64"]
    strategy.transition("off")
    assert bench.board(1)["power"] is False
    # every power change drops console and network users: a stale login would lie
    for name in ("ShellDriver", "ParamikoSSHDriver"):
        assert target.get_driver(name, activate=False).state is not BindingState.active, f"{name} still active"


def test_loader_by_maskrom_button_when_off(target, bench):
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("off")
    strategy.transition("loader")
    assert bench.board(1)["mode"] == "maskrom"
    assert bench.board(1)["maskrom_button"] is False, "the maskrom button was left pressed"


def test_maskrom_entry_holds_the_button_across_a_full_power_cycle(target, bench):
    """From a running board: off, button pressed, the power driver's delay, on, hold, release."""
    # someone switched it off and on at the bench; the strategy does not know what runs
    assert bench.call("PUT", "/outlet/1", b"0")[0] == 200 and bench.call("PUT", "/outlet/1", b"1")[0] == 200
    assert bench.board(1)["mode"] in ("booting", "running")
    strategy = target.get_driver("RK3576Strategy")
    delay = target.get_driver("NetworkPowerDriver").delay
    watch = BoardWatch(bench)
    try:
        strategy.transition("loader")
        time.sleep(0.1)
    finally:
        samples = watch.stop()
    assert bench.board(1)["mode"] == "maskrom" and bench.board(1)["maskrom_button"] is False
    on_at = next(i for i, s in enumerate(samples) if s[3] == "maskrom")
    off = [s for s in samples[:on_at] if s[1] is False]
    assert off, "the watch never saw the board off before it came up in maskrom"
    off_for = samples[on_at][0] - off[0][0]
    assert off_for >= delay - 0.1, f"off for {off_for:.2f} s only: the power driver's {delay:g} s delay was skipped"
    held = [s for s in samples[:on_at] if s[1] is False and s[2] is True]
    assert held, "the button was not held while the board was off"
    held_for = samples[on_at][0] - held[0][0]
    assert held_for >= delay - 0.1, f"button held with power off for {held_for:.2f} s only, not the {delay:g} s delay"
    assert samples[on_at - 1][2] is True, "the button was not held when power came back"
    assert not any(s[2] and s[3] in ("booting", "running") for s in samples), "button pressed while the board ran"


def test_failed_reboot_loader_falls_back_to_the_maskrom_button(target, bench):
    """An image whose 'reboot loader' just reboots: the strategy uses the maskrom button instead."""
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("shell")
    flasher = target.get_driver("TwinFlashDriver")
    with pytest.raises(flashtools.LoaderTimeout, match="not in loader mode"):
        flasher.await_loader(timeout=0.5)  # the twin's driver fails the way the real ones do
    ssh = target.get_driver("ParamikoSSHDriver")
    ssh.run_check("printf '#!/bin/sh\\nexec busybox reboot\\n' > /tmp/plain-reboot && chmod 755 /tmp/plain-reboot "
                  "&& mount --bind /tmp/plain-reboot /sbin/reboot")
    strategy.loader_timeout = 6.0
    start = time.monotonic()
    strategy.transition("loader")
    assert time.monotonic() - start >= 6.0, "the strategy did not wait for the loader after 'reboot loader'"
    assert bench.board(1)["mode"] == "maskrom", "not in maskrom: the fallback was not the maskrom button"
    assert bench.board(1)["maskrom_button"] is False


def test_loader_by_reboot_from_shell_then_flash(target, bench, twin_images):
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("shell")
    strategy.transition("loader")
    assert bench.board(1)["mode"] == "loader"
    boot = strategy.flash(str(twin_images / "twin-rkllm-1.3.0.img"))
    assert boot.via == "flash" and strategy.status == Status.shell
    ssh = target.get_driver("ParamikoSSHDriver")
    assert "twin-rkllm-1.3.0" in " ".join(ssh.run_check("cat /etc/build-info"))


def test_no_login_breaks_the_strategy_with_console_lines(target, bench, twin_images):
    strategy = target.get_driver("RK3576Strategy")
    strategy.boot_attempts = 2
    target.get_driver("ShellDriver").login_timeout = 8
    start = time.monotonic()
    with pytest.raises(StrategyError):
        strategy.flash(str(twin_images / "twin-no-login.img"))
    assert time.monotonic() - start < 60, "giving up took too long"
    cause = str(strategy.broken)
    assert "did not reach shell in 2 attempts" in cause and "--- last console lines ---" in cause
    assert "Linux version" in strategy.boots[-1].failures[-1][1]
    with pytest.raises(StrategyError):
        strategy.transition("shell")  # broken stays broken: no silent retry
    # leave the reference image on the board for the other tests of this session
    bench.call("PUT", "/outlet/1", b"0")
