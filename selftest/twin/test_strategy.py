"""The RK3576 strategy on a real twin board: U-Boot, loader (both ways in), flash, and giving up."""

from __future__ import annotations

import time

import pytest
from labgrid.binding import BindingState
from labgrid.strategy import StrategyError

from hil.lab.strategy import Status
from hil.twin import lab


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
    lab.release(bench.state["coordinator"], "twin-1")


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
