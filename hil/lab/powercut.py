"""Power cut while the board writes to its user partition: what was synced must survive.

Rockchip's power-loss storage test, measured. A writer on the board (busybox sh) loops: it
writes a file of random data, calls ``sync``, prints ``@synced <sha256>  f<n>``, then writes
one more file it does not sync, prints ``@unsynced <sha256>  u<n>`` and pauses (``PAUSE_S``),
as an application does between writes. The host cuts the power after a random delay (seeded,
so a run is repeatable), at the writer's next pause: every cut then has data in flight, synced
and not, that the check must tell apart. Everything the host had read before the cut was
printed before it, so every file announced ``@synced`` (and every ``u`` file written before a
later ``sync``) was on the medium. After the boot the board's kernel log is searched
for ext4/jbd2 errors, ``e2fsck -fn`` checks the partition where the board has it, and every file
is hashed again: a synced file that is missing or changed is a failure; an unsynced one that
is gone is what a power cut does to a page cache, reported as such, never hidden.
"""

from __future__ import annotations

import random
import re
import shlex
import time

import attr

from hil.lab.strategy import RK3576Strategy, Status

DEFAULT_DIR = "/userdata/hil-powercut"
FILE_KIB = 256
PAUSE_S = 3  # after each unsynced write: longer than the cut takes to reach the board
_EVENT = re.compile(r"^@(synced|unsynced) ([0-9a-f]{64})  ([fu]\d+)$", re.M)
_HASH = re.compile(r"^([0-9a-f]{64})  ([fu]\d+)$", re.M)
FS_ERROR = re.compile(r"EXT4-fs error|EXT4-fs \([^)]+\): (?:error|corrupt|bad)|JBD2: .*(?:error|corrupt)|"
                      r"I/O error.*dev (?:mmcblk|vd|sd)", re.I)


def writer_command(directory: str, kib: int = FILE_KIB, pause_s: float = PAUSE_S) -> str:
    d = shlex.quote(directory)
    return (f"mkdir -p {d} && cd {d} || exit 1; n=0; while :; do n=$((n + 1)); "
            f"dd if=/dev/urandom of=f$n bs=1024 count={kib} 2>/dev/null || exit 2; sync; "
            "echo \"@synced $(sha256sum f$n)\"; "
            f"dd if=/dev/urandom of=u$n bs=1024 count={kib} 2>/dev/null || exit 2; "
            f"echo \"@unsynced $(sha256sum u$n)\"; sleep {pause_s:g}; done")


def check_command(directory: str) -> str:
    """After the boot: the kernel's ext4/jbd2 lines, e2fsck of the partition that holds
    ``directory`` where the board has e2fsck, and the hash of every file left.

    e2fsck checks the partition remounted read-only (which writes the journal back): on a
    mounted read-write ext4 it reads a live filesystem and reports what is only in flight. A
    partition that cannot be remounted (a program has a file open for writing) is not checked,
    and the output says so."""
    d = shlex.quote(directory)
    return (f"echo @dmesg; dmesg | grep -E 'EXT4-fs|JBD2|I/O error'; "
            f"set -- $(df {d} 2>/dev/null | awk 'NR==2 {{print $1, $NF}}'); dev=$1 mnt=$2; echo \"@device $dev\"; "
            "if ! command -v e2fsck >/dev/null 2>&1; then echo '@no-fsck no e2fsck on the board'; "
            "elif mount -o remount,ro \"$mnt\" 2>/dev/null; then echo @fsck; e2fsck -fn \"$dev\" 2>&1; "
            "echo \"@fsck-status $?\"; mount -o remount,rw \"$mnt\"; "
            "else echo \"@no-fsck not run: $mnt could not be remounted read-only (in use)\"; fi; "
            f"echo @hashes; cd {d} 2>/dev/null && sha256sum f* u* 2>/dev/null; true")


@attr.s(frozen=True)
class CutResult:
    n = attr.ib()
    cut_after_s = attr.ib()
    synced = attr.ib(factory=dict)  # file -> sha256 of the files on the medium before the cut
    unsynced = attr.ib(factory=dict)  # file -> sha256 of the file written after the last sync
    lost_synced = attr.ib(factory=list)  # synced files that are missing or changed: data loss
    unsynced_lost = attr.ib(factory=list)  # unsynced files gone or changed, as expected of a cut
    fs_errors = attr.ib(factory=list)  # kernel lines and e2fsck's findings
    fsck = attr.ib(default=None)  # "clean", "errors (status N)", or why it was not run
    error = attr.ib(default=None)  # why the cut could not be checked (no boot, no writer)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.lost_synced and not self.fs_errors

    def to_dict(self) -> dict:
        return attr.asdict(self)


def classify(output: str) -> tuple[dict, dict]:
    """(synced, unsynced) from what the writer printed before the cut: a ``u`` file is synced
    once a later ``@synced`` line shows a ``sync`` ran after it."""
    synced, pending = {}, {}
    for kind, sha, name in _EVENT.findall(output):
        if kind == "synced":
            synced.update(pending)
            pending = {}
            synced[name] = sha
        else:
            pending[name] = sha
    return synced, pending


def verify(synced: dict, unsynced: dict, check_output: str) -> tuple[list, list, list, str | None]:
    """(lost synced files, lost unsynced files, filesystem errors, fsck verdict) from ``check_command``'s output."""
    dmesg = check_output.split("@dmesg", 1)[-1].split("@device", 1)[0]
    errors = [line.strip() for line in dmesg.splitlines() if FS_ERROR.search(line)]
    skipped = re.search(r"^@no-fsck (.+)$", check_output, re.M)
    fsck = skipped[1].strip() if skipped else None
    if "@fsck-status" in check_output:
        status = int(re.search(r"@fsck-status (\d+)", check_output)[1])
        fsck = "clean" if status == 0 else f"errors (status {status})"
        if status != 0:
            body = check_output.split("@fsck", 1)[1].split("@fsck-status", 1)[0]
            errors.append(f"e2fsck -fn: status {status}: " + " / ".join(body.strip().splitlines()[-5:]))
    found = {name: sha for sha, name in _HASH.findall(check_output.split("@hashes", 1)[-1])}
    lost = [f"{name} ({'missing' if name not in found else 'changed'})"
            for name, sha in sorted(synced.items(), key=lambda kv: int(kv[0][1:])) if found.get(name) != sha]
    gone = [name for name, sha in unsynced.items() if found.get(name) != sha]
    return lost, gone, errors, fsck


@attr.s(eq=False)
class PowerCutter:
    """Cuts the power of one board at random moments while it writes, and checks what survived."""

    strategy: RK3576Strategy = attr.ib()
    directory: str = attr.ib(default=DEFAULT_DIR)
    min_s: float = attr.ib(default=2.0)
    max_s: float = attr.ib(default=8.0)
    seed: int = attr.ib(default=1)
    start_timeout: float = attr.ib(default=60.0)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def cut(self, n: int) -> CutResult:
        delay = round(self._rng.uniform(self.min_s, self.max_s), 2)
        ssh = self.strategy.ssh
        self.strategy.target.activate(ssh)
        ssh.run(f"rm -rf {shlex.quote(self.directory)}", timeout=60)
        proc = ssh.start(writer_command(self.directory))
        try:
            proc.expect(re.compile(r"^@synced ", re.M), self.start_timeout)
            until = time.monotonic() + delay
            while time.monotonic() < until:
                if proc.wait(min(0.5, until - time.monotonic()), check=False) is not None:
                    return CutResult(n=n, cut_after_s=delay, error=f"the writer stopped before the cut: "
                                                                  f"{proc.output[-300:]!r}")
            proc.position = len(proc.output)
            proc.expect(re.compile(r"^@unsynced .*\n", re.M), self.start_timeout)  # its pause begins
            output = proc.output
            self.strategy.cut_power()  # nothing on the board is told
        except Exception as e:  # noqa: BLE001 - the writer never got going: no cut to check
            proc.abandon()
            return CutResult(n=n, cut_after_s=delay, error=f"the writer did not start: {e}")
        proc.abandon()
        synced, unsynced = classify(output)
        try:
            self.strategy.transition(Status.shell)
            self.strategy.target.activate(ssh)
            check = "\n".join(ssh.run_check(check_command(self.directory), timeout=300))
        except Exception as e:  # noqa: BLE001 - a board that does not come back is this cut's finding
            return CutResult(n=n, cut_after_s=delay, synced=synced, unsynced=unsynced,
                             error=f"after the cut: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        lost, gone, errors, fsck = verify(synced, unsynced, check)
        ssh.run(f"rm -rf {shlex.quote(self.directory)}", timeout=60)
        return CutResult(n=n, cut_after_s=delay, synced=synced, unsynced=unsynced, lost_synced=lost,
                         unsynced_lost=gone, fs_errors=errors, fsck=fsck)
