"""The RK3576 boot state machine: off, loader (flashing), uboot, shell.

One strategy drives every RK3576 board, real or virtual, through labgrid protocols only:
power through ``PowerProtocol``, the console through ``ConsoleProtocol``, login through
labgrid's ``ShellDriver``, U-Boot through ``UBootDriver``, Rockchip's USB loader through the
project's ``FlashProtocol`` and the maskrom button through a ``DigitalOutputProtocol``.

Why it looks the way it does:
- every power change first deactivates the console users and the SSH driver, because they
  remember a login (ShellDriver) or a TCP connection (SSH) that a power cut ends;
- a boot that does not reach its state in time is retried with a power cycle, at most
  ``boot_attempts`` times; a kernel panic on the console ends an attempt at once instead of
  waiting for the login timeout. After the last attempt the strategy is broken
  (``@never_retry``) and its error carries the last console lines, so a board that never
  boots stops the run quickly and says why;
- loader mode comes from ``reboot loader`` in a shell; when that does not bring the USB loader
  up (an image without reboot-mode support, a hung shell) the maskrom button is held across
  a power cycle instead, if one is wired; a failure names both attempts and what to check;
- each boot is kept as a ``BootRecord`` (attempts, seconds to the state, the console text
  of the successful attempt and of the failed ones), which the boot test scans for panics,
  Oopses and rknpu errors.
"""

from __future__ import annotations

import enum
import re
import time

import attr
from pexpect import TIMEOUT
from labgrid.exceptions import NoResourceFoundError
from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError, never_retry
from labgrid.util import Timeout

from hil.lab.consolelog import ConsoleRecord
from hil.lab.labfault import LabFault
from hil.rockchip import flashtools

PANIC = re.compile(r"Kernel panic - not syncing[^\n]*")
#: Seconds between looks for the USB loader, the pace of labgrid's own ``await_resources``.
LOADER_POLL = 0.5


class Status(enum.Enum):
    unknown = 0
    off = 1
    loader = 2
    uboot = 3
    shell = 4


class BootError(StrategyError):
    """The board did not reach a state after every allowed attempt."""


@attr.s(eq=False)
class BootRecord:
    """One boot as the strategy saw it, for the boot test and the report."""

    state = attr.ib()  # "uboot" or "shell"
    attempts = attr.ib()  # attempts used, 1 when the first one worked
    seconds = attr.ib()  # power-on (or loader reset) to the state, successful attempt
    console = attr.ib(repr=False)  # console text of the successful attempt
    failures = attr.ib(factory=list)  # (error text, console text) of each failed attempt
    via = attr.ib(default="power")  # "power" (power cycle) or "flash" (reset out of the loader)


@target_factory.reg_driver
@attr.s(eq=False)
class RK3576Strategy(Strategy):
    """off / loader / uboot / shell for Rockchip RK3576 boards.

    Args:
        boot_attempts (int): power cycles allowed to reach uboot or shell
        loader_timeout (float): seconds for the USB loader device to appear
        maskrom_hold (float): seconds the maskrom button stays pressed after power-on
    """

    bindings = {
        "power": "PowerProtocol",
        "console": "ConsoleProtocol",
        "shell": "ShellDriver",
        "uboot": {"UBootDriver", None},
        "ssh": {"ParamikoSSHDriver", None},
        "flasher": {"FlashProtocol", None},
        "maskrom": {"DigitalOutputProtocol", None},
    }

    status = attr.ib(default=Status.unknown)
    boot_attempts = attr.ib(default=3, converter=int)
    loader_timeout = attr.ib(default=30.0, converter=float)
    maskrom_hold = attr.ib(default=1.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.record: ConsoleRecord | None = None
        self.last_boot: BootRecord | None = None
        self.boots: list[BootRecord] = []

    # --- helpers -------------------------------------------------------------------------
    def console_record(self) -> ConsoleRecord:
        """Everything the console printed since the strategy first used it (``mark``/``since``)."""
        if self.record is None:
            self.record = ConsoleRecord(self.console)
        return self.record

    def _activate_console(self) -> None:
        """Connect the console; one that cannot be reached is the lab's fault (the console server,
        or the exporter that publishes it), not the board's, and is named as such."""
        try:
            self.target.activate(self.console)
        except NoResourceFoundError as e:
            raise LabFault("exporter", f"the board's console is not published ({e}): check that the "
                                       "exporter of this place runs") from e
        except OSError as e:  # serial.SerialException is an OSError
            raise LabFault("console server", f"cannot open the board's console ({e}): check that the "
                                             "console server runs and is reachable") from e

    def _drop_users(self) -> None:
        """Forget logins and connections before the board's power or mode changes."""
        for user in (self.ssh, self.uboot, self.shell):
            if user is not None:
                self.target.deactivate(user)

    def _power_off(self) -> None:
        self._drop_users()
        self.target.activate(self.power)
        self.power.off()

    def _power_cycle(self) -> None:
        """Off, the power driver's ``delay``, on: the supplies must drain, or the SoC does not reset."""
        self._drop_users()
        self.target.activate(self.power)
        self.power.cycle()

    def _require(self, driver, name: str, status: Status):
        """The driver a state needs; a StrategyError naming it when the environment has none."""
        if driver is None:
            raise StrategyError(f"no {name} in this environment: state '{status.name}' is not available "
                                f"(add a {name} to the target's drivers)")
        return driver

    def _await_console(self, patterns: list[str], what: str, timeout: float) -> None:
        """Wait for the first of ``patterns`` while watching for a kernel panic."""
        try:
            index, _, match, _ = self.console.expect([PANIC.pattern, *patterns], timeout=timeout)
        except TIMEOUT:
            raise BootError(f"no {what} on the console within {timeout:g} s") from None
        if index == 0:
            line = match.group(0).decode(errors="replace")
            try:  # the reason follows on the same line; it may not have arrived yet
                _, rest, _, _ = self.console.expect(r"\n", timeout=2)
                line += rest.decode(errors="replace")
            except TIMEOUT:
                pass
            raise BootError(f"kernel panic during boot: {line.strip()}")

    def _reach(self, state: Status) -> None:
        """From power on (or loader reset): wait for U-Boot or a logged-in shell."""
        if state == Status.uboot:
            self.target.activate(self.uboot)  # it stops autoboot itself, within its login_timeout
        else:
            self._await_console([self.shell.login_prompt, self.shell.prompt], "login prompt or shell prompt",
                                timeout=self.shell.login_timeout)
            self.target.activate(self.shell)

    def _boot(self, state: Status, *, via: str = "power") -> BootRecord:
        if state == Status.uboot:
            self._require(self.uboot, "UBootDriver", state)  # before any power cycle, not after each
        record = self.console_record()
        failures: list[tuple[str, str]] = []
        for attempt in range(1, self.boot_attempts + 1):
            if via == "power" or attempt > 1:
                self._activate_console()
                mark = record.mark()
                self._power_cycle()
            else:  # the board is booting already (reset out of the loader)
                self._activate_console()
                mark = record.mark()
            start = time.monotonic()
            try:
                self._reach(state)
            except Exception as e:  # noqa: BLE001 - every failure of an attempt is retried
                text = str(e) if isinstance(e, BootError) else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                failures.append((text, record.since(mark)))
                self._drop_users()
                continue
            boot = BootRecord(state=state.name, attempts=attempt, seconds=time.monotonic() - start,
                              console=record.since(mark), failures=failures,
                              via=via if attempt == 1 else "power")
            self.last_boot = boot
            self.boots.append(boot)
            return boot
        self._power_off()
        last_error, last_console = failures[-1]
        tail = "\n".join(last_console.rstrip("\n").splitlines()[-25:]) or "(the console stayed silent)"
        self.last_boot = BootRecord(state=state.name, attempts=len(failures), seconds=None, console="",
                                    failures=failures, via=via)
        self.boots.append(self.last_boot)
        raise BootError(f"the board did not reach {state.name} in {len(failures)} attempts "
                        f"(power cycled between them); last error: {last_error}\n"
                        f"--- last console lines ---\n{tail}")

    def _enter_loader(self) -> str:
        """``reboot loader`` from a shell, else (or when that fails) the maskrom button and a power cycle."""
        self._require(self.flasher, "FlashProtocol driver", Status.loader)
        if self.status == Status.shell:
            self._activate_console()
            self.console.sendline("reboot loader")
            self._drop_users()
            try:
                return self._await_loader()
            except (BootError, flashtools.NoLoaderDevice) as e:
                first = e
            if self.maskrom is None:
                raise BootError(
                    f"the board did not enter loader mode after 'reboot loader' from its shell: {first}\n"
                    "there is no maskrom button in this environment (no DigitalOutputProtocol driver) to fall "
                    "back to: check that the image supports 'reboot loader' (reboot-mode in its device tree) "
                    "and the OTG cable, or wire the maskrom button to a relay and add its driver") from first
            self.logger.warning("no loader after 'reboot loader' (%s); trying the maskrom button", first)
            try:
                self._press_maskrom()
                return self._await_loader()
            except (BootError, flashtools.NoLoaderDevice) as e:
                raise BootError(
                    "the board did not enter loader mode either way:\n"
                    f"  1. 'reboot loader' from its shell: {first}\n"
                    f"  2. maskrom button held across a power cycle: {e}\n"
                    "check the USB cable in the board's OTG/download port and its host side, that the maskrom "
                    "relay really presses the button (wiring, relay index), and that the power switch really "
                    "cuts the board's power") from e
        if self.maskrom is None:
            raise StrategyError("cannot enter loader mode: the board is not in a shell (for 'reboot loader') "
                                "and the environment has no maskrom button (DigitalOutputProtocol)")
        self._press_maskrom()
        return self._await_loader()

    def _press_maskrom(self) -> None:
        """Hold the maskrom button across a full power cycle; the BootROM samples it at reset.

        The board goes off before the button is pressed, so a running system never sees it.
        """
        self._power_off()
        self.target.activate(self.maskrom)
        self.maskrom.set(True)
        try:
            self._power_cycle()
            time.sleep(self.maskrom_hold)
        finally:
            self.maskrom.set(False)

    def _await_loader(self) -> str:
        """Wait up to ``loader_timeout`` for the flash driver's USB loader resource, then the device.

        ``activate`` waits only the resource's own short timeout, and fails at once for a
        static resource, so look again every LOADER_POLL seconds instead of spinning.
        """
        timeout = Timeout(self.loader_timeout)
        while True:
            try:
                self.target.activate(self.flasher)
                break
            except NoResourceFoundError:
                if timeout.expired:
                    raise BootError(f"the board did not show up as a USB loader (2207:350e) within "
                                    f"{self.loader_timeout:g} s; check the OTG cable and the maskrom wiring") from None
            time.sleep(min(LOADER_POLL, timeout.remaining))
        return self.flasher.await_loader(timeout=max(1.0, timeout.remaining))

    # --- labgrid API ---------------------------------------------------------------------
    @never_retry
    @step(args=["status"])
    def transition(self, status, *, step):
        if not isinstance(status, Status):
            status = Status[status]
        if status == self.status:
            step.skip("nothing to do")
            return
        self._transition(status)

    def _transition(self, status: Status) -> None:
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == Status.off:
            self._power_off()
        elif status == Status.loader:
            self._enter_loader()
        elif status in (Status.uboot, Status.shell):
            self._boot(status)
        else:
            raise StrategyError(f"no transition found from {self.status} to {status}")
        self.status = status

    @never_retry
    @step(args=["status"])
    def force(self, status):
        """Assume the board already is in ``status`` (e.g. after a manual boot)."""
        if not isinstance(status, Status):
            status = Status[status]
        needs = {Status.off: (self.power, "PowerProtocol driver"), Status.uboot: (self.uboot, "UBootDriver"),
                 Status.shell: (self.shell, "ShellDriver"), Status.loader: (self.flasher, "FlashProtocol driver")}
        if status not in needs:
            raise StrategyError(f"can not force state {status}")
        self.target.activate(self._require(*needs[status], status))
        self.status = status

    @never_retry
    @step(args=["how"])
    def start_boot(self, how: str) -> tuple[int, float]:
        """Start a boot and return at once, for a caller that watches it (``hil.lab.bootcycle``):
        ``"power"`` cuts the power through the PDU, ``"reboot"`` types ``reboot`` in the logged-in
        console shell. Returns (console mark, monotonic time of the power-on or the command)."""
        if how == "reboot" and self.status != Status.shell:
            raise StrategyError(f"a reboot from the shell needs the shell state, the board is {self.status.name}")
        record = self.console_record()
        self._activate_console()
        mark = record.mark()
        if how == "power":
            self._power_cycle()
        else:
            self._drop_users()
            self.console.write(b"reboot\n")
        self.status = Status.unknown
        return mark, time.monotonic()

    @never_retry
    @step()
    def cut_power(self) -> None:
        """Cut the power at once, as a power failure does: the board's connections are dropped
        after the cut, not before (closing them first would give its programs time)."""
        self.target.activate(self.power)
        self.power.off()
        self._drop_users()
        self.status = Status.off

    @never_retry
    @step()
    def login(self) -> None:
        """Log in on a console that shows its login prompt (a boot watched by the caller)."""
        self.target.activate(self._require(self.shell, "ShellDriver", Status.shell))
        self.status = Status.shell

    @never_retry
    @step(args=["filename", "wipe_userdata"])
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> BootRecord:
        """Write a whole image through the loader, reset, and wait for the first boot's shell.

        From entering loader mode to the reset out of it the flasher's host lock is held: no
        other board of the host is in loader mode meanwhile (``hil.lab.flashlock``)."""
        self._require(self.flasher, "FlashProtocol driver", Status.loader)
        with self.flasher.host_lock():
            if self.status != Status.loader:
                self._transition(Status.loader)
            self.flasher.flash(filename, wipe_userdata=wipe_userdata)
            self.flasher.reset()
        self.status = Status.unknown
        boot = self._boot(Status.shell, via="flash")
        self.status = Status.shell
        return boot
