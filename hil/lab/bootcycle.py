"""One boot cycle of an endurance run, watched stage by stage: what ``rockchip-test``'s reboot
loop checks by eye, measured.

A cycle starts a boot (a power cut through the PDU, or ``reboot`` from the shell), then reads
the console as it comes and asks ``hil.rockchip.bootlog`` which stages the boot has shown so
far (``ddr``, ``spl``, ``uboot``, ``kernel``, ``init``, ``login``), noting the second each one
first appeared. After the login prompt it logs in, then checks what a usable board also
needs: SSH (``network``) and the rknpu driver with both NPU cores in its load file (``npu``).
A boot that shows a kernel panic and does not reset itself within ``panic_grace``, stays
silent for ``silence_timeout`` or does not reach the end in ``boot_timeout`` stops there; it
is classified by the last stage it reached and keeps its last console lines. After every boot that reached SSH, ``/sys/fs/pstore`` is read and
emptied: a record there means the board reset by itself (a panic or watchdog) since the last
look, and its text is the only trace of why.

Nothing here decides pass or fail: ``hil.measure.endurance`` turns a run of cycles into a
success rate with its interval and boot-time percentiles, and the test gates them.
"""

from __future__ import annotations

import shlex
import time

import attr
from pexpect import TIMEOUT

from labgrid.strategy import StrategyError

from hil.lab.strategy import BootRecord, RK3576Strategy, Status
from hil.rockchip import bootlog

#: Every stage a usable board reaches, in order: the console's, then SSH and the NPU.
CYCLE_STAGES = (*bootlog.STAGES, "network", "npu")
HOW = ("power", "reboot")
PSTORE_DIR = "/sys/fs/pstore"
PSTORE_MAX_BYTES = 64 * 1024  # of each record: enough for a panic's dmesg, never a whole log
NPU_CORES = ("Core0", "Core1")
#: How often the console read so far is parsed for stages: the resolution of the stage times.
PARSE_EVERY_S = 0.25
#: How a cycle that reached a usable board is classified when the board had reset by itself
#: on the way (pstore kept a record, or the console showed a second boot).
UNEXPECTED_RESET = "unexpected-reset"
#: How a warm reboot is classified whose old system panicked on its way down.
SHUTDOWN = "shutdown"


@attr.s(frozen=True)
class CycleResult:
    """One cycle: ``reached`` maps each stage it reached to seconds since the power-on (or the
    ``reboot`` command); ``stopped_at`` is the last of them when it failed (``"none"`` when the
    console stayed silent; ``UNEXPECTED_RESET`` when it got there after resetting by itself),
    ``reason`` what stopped it."""

    n = attr.ib()
    how = attr.ib()  # "power" or "reboot"
    ok = attr.ib()
    reached = attr.ib(factory=dict)
    stopped_at = attr.ib(default=None)
    reason = attr.ib(default=None)
    panic = attr.ib(default=None)
    last_lines = attr.ib(factory=list)
    pstore = attr.ib(factory=dict)  # record name -> text, read (and removed) after this boot
    boots_seen = attr.ib(default=1)  # boots on the console in this cycle: more than one is a reset
    seconds = attr.ib(default=0.0)  # the whole cycle, checks included

    @property
    def ready_s(self) -> float | None:
        """Seconds to a usable board (the NPU checked), for a cycle that got there."""
        return self.reached.get("npu") if self.ok else None

    def to_dict(self) -> dict:
        return attr.asdict(self)


class StageClock:
    """The stages a boot's console has shown, each with the second it first appeared.

    ``from_banner``: read from the first boot banner on (a warm reboot's console first shows the
    old system going down, whose timestamped kernel lines are no boot of this cycle)."""

    def __init__(self, start: float, from_banner: bool = False) -> None:
        self.start = start
        self.from_banner = from_banner
        self.reached: dict[str, float] = {}
        self.log: bootlog.BootLog | None = None
        self.prelude: bootlog.BootLog | None = None  # the old system going down (from_banner)
        self.prelude_panic: str | None = None

    def update(self, text: str, now: float) -> None:
        self.prelude_panic = None
        if self.from_banner:
            first = bootlog.boot_start(text)
            prelude, text = (text[:text.find(first.line)], text[text.find(first.line):]) if first else (text, "")
            self.prelude = bootlog.parse(prelude)
            self.prelude_panic = next((b.panic for b in self.prelude.boots if b.panic), None)
        self.log = bootlog.parse(text)
        for boot in self.log.boots:
            for stage in boot.stages:
                self.reached.setdefault(stage, round(now - self.start, 3))

    @property
    def boot(self) -> bootlog.Boot | None:
        return self.log.last if self.log else None

    @property
    def panic(self) -> str | None:
        """The panic of the boot being watched, or of the system going down before it."""
        return (self.boot.panic if self.boot else None) or self.prelude_panic

    @property
    def latest_panic(self) -> str | None:
        """A panic that nothing has followed yet: the latest boot's, or the old system's before any boot."""
        return self.boot.panic if self.boot else self.prelude_panic

    @property
    def reset_after_panic(self) -> str | None:
        """A panic after which the board reset by itself (a later boot began): its line."""
        earlier = [b.panic for b in (self.log.boots[:-1] if self.log else []) if b.panic]
        if self.boot is not None and self.prelude_panic:
            earlier.insert(0, self.prelude_panic)
        return earlier[0] if earlier else None

    @property
    def last_stage(self) -> str:
        """The furthest stage reached; ``shutdown`` when the old system panicked going down."""
        if not self.reached and self.prelude_panic:
            return SHUTDOWN
        return max(self.reached, key=CYCLE_STAGES.index, default="none")

    def last_lines(self) -> list[str]:
        if self.log and self.log.boots:
            return self.log.last_lines()
        return self.prelude.last_lines() if self.prelude else (self.log.last_lines() if self.log else [])


class CycleStop(Exception):
    """A cycle that ended before the board was usable; the message says why."""


@attr.s(eq=False)
class BootCycler:
    """Runs cycles on one board through its strategy (power, console, shell, SSH) and NPU driver.

    Args:
        boot_timeout: seconds from power-on to the login prompt
        silence_timeout: seconds the console may stay silent before the boot counts as hung
        panic_grace: seconds a panicked board has to reset itself (``panic=N``) before the cycle
            stops at the panic

    SSH gets the driver's own ``connection_timeout`` after the login prompt.
    """

    strategy: RK3576Strategy = attr.ib()
    npu = attr.ib()  # hil.lab.npu.NPUProtocol
    boot_timeout = attr.ib(default=120.0, converter=float)
    silence_timeout = attr.ib(default=30.0, converter=float)
    panic_grace = attr.ib(default=15.0, converter=float)

    def cycle(self, n: int, how: str) -> CycleResult:
        """Cycle ``n``: boot by ``how`` and watch it to a usable board, or to where it stopped."""
        if how not in HOW:
            raise ValueError(f"how must be one of {HOW}, not {how!r}")
        record = self.strategy.console_record()
        mark, start = self.strategy.start_boot(how)
        clock = StageClock(start, from_banner=how == "reboot")
        pstore: dict[str, str] = {}
        reason = None
        try:
            self._watch_console(clock, record, mark)
            self._login()
            clock.reached["network"] = round(self._reach_ssh() - start, 3)
            pstore = self._collect_pstore()
            self._check_npu()
            clock.reached["npu"] = round(time.monotonic() - start, 3)
        except CycleStop as stop:
            reason = str(stop)
        clock.update(record.since(mark), time.monotonic())
        boots = len(clock.log.boots) if clock.log else 0
        stopped_at = None
        if reason is not None:
            stopped_at = clock.last_stage
        elif pstore or boots > 1 or clock.reset_after_panic:
            stopped_at = UNEXPECTED_RESET
            reason = "; ".join(filter(None, [
                f"pstore kept {', '.join(sorted(pstore))} from a reset before this boot" if pstore else None,
                f"the board reset itself after a panic: {clock.reset_after_panic}" if clock.reset_after_panic else None,
                f"the console shows {boots} boots in one cycle" if boots > 1 else None]))
        result = CycleResult(n=n, how=how, ok=stopped_at is None, reached=dict(clock.reached), stopped_at=stopped_at,
                             reason=reason, panic=clock.panic,
                             last_lines=clock.last_lines() if stopped_at else [], pstore=pstore, boots_seen=boots,
                             seconds=round(time.monotonic() - start, 3))
        self.strategy.boots.append(BootRecord(state="shell", attempts=1, seconds=result.ready_s,
                                              console=record.since(mark), via=how))  # the watchdog's count
        return result

    def run(self, how: str, count: int, on_cycle=None) -> tuple[list[CycleResult], str | None]:
        """``count`` cycles, ``on_cycle(result)`` after each; returns the cycles and, if the run
        could not go on, why. A warm reboot needs a shell: after a failed one the board is
        brought back with the strategy's power cycles (and the run stops if that fails)."""
        cycles = []
        for n in range(1, count + 1):
            if how == "reboot" and self.strategy.status != Status.shell:
                try:
                    self.strategy.transition(Status.shell)
                except StrategyError as e:
                    return cycles, f"the board did not come back for cycle {n}: {e}"
            cycles.append(self.cycle(n, how))
            if on_cycle is not None:
                on_cycle(cycles[-1])
        return cycles, None

    def _watch_console(self, clock: StageClock, record, mark: int) -> None:
        """Read the console until the login prompt; a panic, silence or the deadline stops it."""
        console = self.strategy.console
        heard = clock.start
        parsed = 0.0
        panicked = None  # when the latest panic was seen: the board has panic_grace to reset itself
        while True:
            now = time.monotonic()
            try:
                console.read(size=1, timeout=PARSE_EVERY_S, max_size=1 << 16)
                heard = now = time.monotonic()
            except TIMEOUT:
                now = time.monotonic()
            if now - parsed < PARSE_EVERY_S:
                continue  # keep reading: a console read too slowly holds the board's printk back
            parsed = now
            clock.update(record.since(mark), now)
            boot = clock.boot
            panicked = (panicked or now) if clock.latest_panic else None
            if panicked is not None and now - panicked >= min(self.panic_grace, self.silence_timeout):
                raise CycleStop(f"kernel panic: {clock.latest_panic}")
            if boot is not None and "login" in boot.stages:
                return
            if panicked is None and now - heard > self.silence_timeout:  # after a panic, the panic rule decides
                raise CycleStop(f"the console stayed silent for {self.silence_timeout:g} s after "
                                f"{'stage ' + clock.last_stage if clock.reached else 'the power-on'}")
            if now - clock.start > self.boot_timeout:
                raise CycleStop(f"no login prompt within {self.boot_timeout:g} s (last stage: {clock.last_stage})")

    def _login(self) -> None:
        try:
            self.strategy.login()
        except Exception as e:  # noqa: BLE001 - a prompt that takes no login is this cycle's failure
            raise CycleStop(f"no login on the console: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                from None

    def _reach_ssh(self) -> float:
        """Connect (the driver retries for its ``connection_timeout``) and run a command."""
        ssh = self.strategy.ssh
        if ssh is None:
            raise CycleStop("no SSH driver in this environment to check the network")
        try:
            self.strategy.target.activate(ssh)
            ssh.run_check("true", timeout=10)
        except Exception as e:  # noqa: BLE001 - every way SSH can fail is a network failure here
            self.strategy.target.deactivate(ssh)
            raise CycleStop(f"no SSH after the login prompt: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                from None
        return time.monotonic()

    def _collect_pstore(self) -> dict[str, str]:
        """Read and remove what pstore kept from before this boot (an unexpected reset's last words)."""
        ssh = self.strategy.ssh
        names = ssh.run_check(f"ls -1 {PSTORE_DIR} 2>/dev/null || true", timeout=10)
        records = {}
        for name in (n.strip() for n in names if n.strip()):
            path = shlex.quote(f"{PSTORE_DIR}/{name}")
            out, _, _ = ssh.run(f"head -c {PSTORE_MAX_BYTES} {path}", timeout=10)
            records[name] = "\n".join(out)
            ssh.run(f"rm -f {path}", timeout=10)
        return records

    def _check_npu(self) -> None:
        try:
            self.strategy.target.activate(self.npu)
            load = self.npu.load()
        except Exception as e:  # noqa: BLE001 - the driver's error names the missing file
            raise CycleStop(f"the rknpu driver did not come up: {e}") from None
        missing = [core for core in NPU_CORES if core not in load]
        if missing:
            raise CycleStop(f"the rknpu load file shows no {', '.join(missing)} (it reads {load})")
