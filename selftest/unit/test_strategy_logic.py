"""RK3576Strategy's decisions, against small fake drivers: the order of power, button and loader steps.

The fakes share a ``FakeBoard`` that keeps a timeline of what was switched when, and turns
power and the maskrom button into a mode, as the BootROM does: on with the button held is
Maskrom, ``reboot loader`` on the console is Loader (when the image supports it). What a
real board on the twin does is proven in selftest/twin/test_strategy.py; here only the logic.
"""

from __future__ import annotations

import contextlib

import threading
import time

import attr
import pytest
import serial
from labgrid import Target
from labgrid.driver import Driver, ShellDriver
from labgrid.driver.fake import FakeConsoleDriver
from labgrid.protocol import DigitalOutputProtocol, PowerProtocol
from labgrid.resource import Resource
from labgrid.strategy import StrategyError

from hil.lab.flashprotocol import FlashProtocol
from hil.lab.labfault import LabFault
from hil.lab.strategy import BootError, RK3576Strategy, Status
from hil.rockchip import flashtools as ft


class FakeBoard:
    def __init__(self) -> None:
        self.power = False
        self.button = False
        self.mode = "off"
        self.reboot_loader_works = True  # the image has reboot-mode support
        self.button_wired = True  # the relay really presses the maskrom button
        self.console_server_down = False
        self.reset_fails = False
        self.timeline: list[tuple[float, str, object]] = []

    def log(self, what: str, value) -> None:
        self.timeline.append((time.monotonic(), what, value))

    def set_power(self, on: bool) -> None:
        self.log("power", on)
        if on and not self.power:
            self.mode = "maskrom" if self.button and self.button_wired else "booting"
        elif not on:
            self.mode = "off"
        self.power = on

    def set_button(self, pressed: bool) -> None:
        self.log("button", pressed)
        self.button = pressed

    def console(self, data: bytes) -> None:
        self.log("console", data)
        if b"reboot loader" in data:
            self.mode = "loader" if self.reboot_loader_works else "booting"


@attr.s(eq=False)
class FakePower(Driver, PowerProtocol):
    board = attr.ib(default=None)
    delay = attr.ib(default=0.3, converter=float)

    @Driver.check_active
    def on(self):
        self.board.set_power(True)

    @Driver.check_active
    def off(self):
        self.board.set_power(False)

    @Driver.check_active
    def cycle(self):  # as labgrid's NetworkPowerDriver
        self.off()
        time.sleep(self.delay)
        self.on()

    @Driver.check_active
    def get(self):
        return self.board.power


@attr.s(eq=False)
class FakeButton(Driver, DigitalOutputProtocol):
    board = attr.ib(default=None)

    @Driver.check_active
    def set(self, status):
        self.board.set_button(bool(status))

    @Driver.check_active
    def get(self):
        return self.board.button


@attr.s(eq=False)
class FakeConsole(FakeConsoleDriver):
    board = attr.ib(default=None)

    def on_activate(self):
        if self.board.console_server_down:  # what pyserial says when the console server refuses
            raise serial.SerialException("Could not open port socket://127.0.0.1:21011: [Errno 111] "
                                         "Connection refused")
        super().on_activate()

    def _write(self, data, *_):
        self.board.console(data)
        return super()._write(data)


@attr.s(eq=False)
class FakeLoader(Resource):
    """A static USB loader resource; tests switch ``avail`` by hand."""


@attr.s(eq=False)
class FakeFlasher(Driver, FlashProtocol):
    bindings = {"loader": FakeLoader}
    board = attr.ib(default=None)

    @Driver.check_active
    def await_loader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while self.board.mode not in ("maskrom", "loader"):
            if time.monotonic() > deadline:
                raise ft.LoaderTimeout(f"no rockusb device within {timeout:g} s: {ft.NOT_IN_LOADER_HINT}")
            time.sleep(0.02)
        return self.board.mode.capitalize()

    @Driver.check_active
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        self.board.log("flash", filename)

    @Driver.check_active
    def reset(self) -> None:
        self.board.log("reset", self.board.mode)
        if self.board.reset_fails:
            raise ft.ResetFailed("Reset Device failed!")

    @contextlib.contextmanager
    def host_lock(self):
        self.board.log("lock", True)
        try:
            yield
        finally:
            self.board.log("lock", False)


@attr.s
class Bench:
    board = attr.ib()
    target = attr.ib()
    strategy = attr.ib()
    loader = attr.ib()


def bench(*, button: bool = True, flasher: bool = True, loader_timeout: float = 0.6) -> Bench:
    board = FakeBoard()
    target = Target("strategy-logic")
    FakePower(target, "power", board=board)
    console = FakeConsole(target, "console", board=board)
    ShellDriver(target, "shell", prompt="# ", login_prompt="login: ", username="root")
    if button:
        FakeButton(target, "maskrom", board=board)
    loader = None
    if flasher:
        loader = FakeLoader(target, "loader")
        FakeFlasher(target, "flasher", board=board)
    strategy = RK3576Strategy(target, "strategy", loader_timeout=loader_timeout, maskrom_hold=0.05)
    target.activate(console)
    return Bench(board, target, strategy, loader)


def events(board: FakeBoard, what: str) -> list[tuple[float, object]]:
    return [(t, v) for t, w, v in board.timeline if w == what]


def cause(call, *args) -> BaseException:
    """What broke the strategy: labgrid's ``@never_retry`` raises StrategyError("... broken state") from it."""
    with pytest.raises(StrategyError, match="broken state") as e:
        call(*args)
    return e.value.__cause__


def button_at(board: FakeBoard, when: float) -> bool:
    pressed = False
    for t, v in events(board, "button"):
        if t <= when:
            pressed = v
    return pressed


# --- maskrom entry -------------------------------------------------------------------------------
def test_maskrom_button_is_held_across_a_power_cycle_with_the_power_drivers_delay():
    b = bench()
    b.board.set_power(True)  # the board runs something the strategy knows nothing about
    b.board.timeline.clear()
    assert b.strategy.transition("loader") is None and b.strategy.status == Status.loader
    assert b.board.mode == "maskrom"
    power = events(b.board, "power")
    on_at = power[-1][0]
    assert power[-1][1] is True
    off_at = max(t for t, v in power if v is False and t < on_at)
    delay = b.target.get_driver(PowerProtocol).delay
    assert on_at - off_at >= delay * 0.95, "power came back before the driver's off->on delay"
    assert button_at(b.board, off_at + 1e-6) and button_at(b.board, on_at), "button not held across the cycle"
    assert not b.board.button, "the button was left pressed"
    first_press = events(b.board, "button")[0]
    assert first_press == (first_press[0], True) and first_press[0] >= power[0][0], \
        "the button was pressed while the board was still running"


# --- the loader wait -----------------------------------------------------------------------------
def test_loader_wait_polls_at_an_interval_until_the_timeout(monkeypatch):
    b = bench(loader_timeout=1.0)
    b.loader.avail = False  # a static resource that never appears: activate fails at once
    attempts = []
    activate = b.target.activate

    def counting(client, *args, **kwargs):
        if client is b.strategy.flasher:
            attempts.append(time.monotonic())
        return activate(client, *args, **kwargs)

    monkeypatch.setattr(b.target, "activate", counting)
    started = time.monotonic()
    error = cause(b.strategy.transition, "loader")
    assert isinstance(error, BootError) and "did not show up as a USB loader (2207:350e) within 1 s" in str(error)
    took = time.monotonic() - started
    assert 1.0 <= took < 3.0
    assert len(attempts) <= 1.0 / 0.5 + 2, f"{len(attempts)} activations in {took:.1f} s: busy loop"


def test_loader_wait_takes_the_resource_when_it_appears():
    b = bench(loader_timeout=5.0)
    b.loader.avail = False
    threading.Timer(0.8, lambda: setattr(b.loader, "avail", True)).start()
    b.strategy.transition("loader")
    assert b.strategy.status == Status.loader
    assert b.strategy.flasher.state.name == "active"


# --- reboot loader, and the maskrom fallback ------------------------------------------------------
def shell_bench(**kwargs) -> Bench:
    b = bench(**kwargs)
    b.board.set_power(True)
    b.board.mode = "running"
    b.strategy.status = Status.shell  # as after transition("shell")
    b.board.timeline.clear()
    return b


def test_reboot_loader_is_tried_first_and_is_enough_when_it_works():
    b = shell_bench()
    b.strategy.transition("loader")
    assert b.board.mode == "loader"
    assert events(b.board, "button") == [] and events(b.board, "power") == []


def test_flashing_holds_the_host_lock_from_entering_the_loader_to_the_reset():
    """No other board of the host may be in loader mode meanwhile (rkdeveloptool cannot pick one)."""
    b = shell_bench()
    b.board.reset_fails = True  # stop before the boot; the lock must still be let go
    error = cause(b.strategy.flash, "image.img")
    assert isinstance(error, ft.ResetFailed)
    steps = [(w, v) for _, w, v in b.board.timeline if w in ("lock", "flash", "reset")]
    assert steps == [("lock", True), ("flash", "image.img"), ("reset", "loader"), ("lock", False)]
    lock_t = [t for t, w, v in b.board.timeline if w == "lock"]
    reboot_t = [t for t, w, v in b.board.timeline if w == "console" and b"reboot loader" in v]
    assert lock_t[0] <= reboot_t[0] <= lock_t[1], "the board entered loader mode under the lock"


def test_failed_reboot_loader_falls_back_to_the_maskrom_button():
    b = shell_bench()
    b.board.reboot_loader_works = False
    b.strategy.transition("loader")
    assert b.strategy.status == Status.loader and b.board.mode == "maskrom"
    sent = events(b.board, "console")
    assert any(b"reboot loader" in data for _, data in sent)
    assert events(b.board, "button")[0][0] > sent[0][0], "the button came before 'reboot loader'"


def test_both_ways_failing_names_both_attempts_and_what_to_check():
    b = shell_bench()
    b.board.reboot_loader_works = False
    b.board.button_wired = False
    error = cause(b.strategy.transition, "loader")
    assert isinstance(error, BootError)
    text = str(error)
    assert "did not enter loader mode either way" in text
    assert "1. 'reboot loader' from its shell: no rockusb device" in text
    assert "2. maskrom button held across a power cycle: no rockusb device" in text
    assert "OTG" in text and "relay" in text and "power switch" in text
    assert not b.board.button


def test_failed_reboot_loader_without_a_button_says_there_is_none():
    b = shell_bench(button=False)
    b.board.reboot_loader_works = False
    error = cause(b.strategy.transition, "loader")
    assert isinstance(error, BootError)
    assert "after 'reboot loader'" in str(error) and "no maskrom button in this environment" in str(error)
    assert isinstance(error.__cause__, ft.LoaderTimeout)
    assert events(b.board, "power") == [], "nothing to fall back to, so no power cycle either"


# --- states whose driver is missing --------------------------------------------------------------
@pytest.mark.parametrize("call", ["force", "transition"])
def test_uboot_without_a_uboot_driver_is_a_strategy_error_naming_it(call):
    b = bench()
    error = cause(getattr(b.strategy, call), "uboot")
    assert type(error) is StrategyError and "no UBootDriver in this environment: state 'uboot'" in error.msg


def test_force_loader_without_a_flash_driver_names_it():
    b = bench(flasher=False)
    error = cause(b.strategy.force, "loader")
    assert type(error) is StrategyError and "no FlashProtocol driver in this environment: state 'loader'" in error.msg


def test_a_console_server_that_refuses_is_a_lab_fault_not_a_boot_failure():
    b = bench()
    b.target.deactivate(b.strategy.console)
    b.board.console_server_down = True
    with pytest.raises(StrategyError):
        b.strategy.transition("shell")
    fault = b.strategy.broken
    assert isinstance(fault, LabFault) and fault.component == "console server"
    assert "lab fault (console server): cannot open the board's console" in str(fault)
    assert "Connection refused" in str(fault)
    assert not events(b.board, "power"), "a lab fault is not retried with power cycles"

