"""The virtual bench: N boards with their PDU outlets, console ports, SSH ports and loader.

``hil twin up`` starts :func:`serve` as a background process and returns once the bench
answers; ``hil twin down`` stops it and checks that no QEMU is left; ``hil twin status``
reads the state file and asks the bench. Ports, for base port B and board n:
HTTP API B, labgrid coordinator B+1, console B+10n+1, SSH B+10n+2, the board's Rockusb
device for the real rkdeveloptool B+10n+3 (``hil.twin.rockusb``). Board n is labgrid place
``twin-n``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import attr

from hil.paths import bench_dir, twin_dir
from hil.twin.api import BenchHTTPServer
from hil.twin.board import VirtualBoard
from hil.twin.boardusb import BoardUSB
from hil.twin.build import ROOT_PASSWORD
from hil.twin.lab import LabError, LabServices, board_resources, place_name
from hil.twin.rockusb import RockusbServer

log = logging.getLogger("hil.twin.bench")

DEFAULT_BASE_PORT = 21000
DEFAULT_IMAGE = "twin-good"
UP_TIMEOUT = 60.0
DOWN_TIMEOUT = 20.0


class BenchError(RuntimeError):
    """The bench cannot be started, reached or stopped; the message says what to do."""


def ports(base: int, index: int) -> dict:
    return {"console": base + 10 * index + 1, "ssh": base + 10 * index + 2, "rockusb": base + 10 * index + 3}


def coordinator_port(base: int) -> int:
    return base + 1


def free_base_port(start: int = 23000, boards: int = 3) -> int:
    """The first base port from ``start`` (in steps of 100) whose bench ports are all free on
    loopback now: the HTTP API, the coordinator and ``boards`` boards' console and SSH.

    For benches started beside another (tests, benchmarks); a port can still be taken between
    this check and the bench's start.
    """
    for base in range(start, 30000, 100):
        wanted = [base, coordinator_port(base)] + [p for n in range(1, boards + 1) for p in ports(base, n).values()]
        try:
            for port in wanted:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise BenchError(f"no free port range for a bench between {start} and 30000")


@attr.s(frozen=True, kw_only=True)
class BenchConfig:
    boards = attr.ib(default=1, converter=int)
    base_port = attr.ib(default=DEFAULT_BASE_PORT, converter=int)
    host = attr.ib(default="127.0.0.1")
    timescale = attr.ib(default=1.0, converter=float)
    image = attr.ib(default=DEFAULT_IMAGE)
    reflash = attr.ib(default=False)
    owner = attr.ib(default=None)  # pid of the run that started the bench: it stops when that run is gone
    state_dir = attr.ib(factory=bench_dir, converter=Path)
    images_dir = attr.ib(factory=lambda: twin_dir() / "images", converter=Path)

    @boards.validator
    def _check_boards(self, _att, value):
        if not 1 <= value <= 16:
            raise BenchError(f"--boards must be between 1 and 16, got {value}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.base_port}"


def _check_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT from a previous bench is fine
        try:
            s.bind((host, port))
        except OSError:
            raise BenchError(f"port {host}:{port} is in use: another bench or service holds it; "
                             f"stop it ('hil twin down') or choose another --base-port") from None


def serve(config: BenchConfig) -> None:
    """Run the bench in this process until SIGTERM/SIGINT."""
    uboot = twin_dir() / "u-boot.bin"
    image = config.images_dir / f"{config.image}.img"
    for path, what in ((uboot, "U-Boot"), (image, f"image {config.image}")):
        if not path.exists():
            raise BenchError(f"{what} not found at {path}: run 'hil twin build' first")
    for n in range(1, config.boards + 1):
        for port in ports(config.base_port, n).values():
            _check_free(config.host, port)
    _check_free(config.host, config.base_port)
    _check_free(config.host, coordinator_port(config.base_port))
    host_key = (twin_dir() / "ssh_host_ed25519_key.pub").read_text().strip()
    boards = {}
    for n in range(1, config.boards + 1):
        p = ports(config.base_port, n)
        board = VirtualBoard(n, config.state_dir / f"board-{n}", host=config.host, console_port=p["console"],
                             ssh_port=p["ssh"], uboot=uboot, timescale=config.timescale)
        board.provision(image, force=config.reflash)
        boards[n] = board
    usb = {n: RockusbServer(BoardUSB(board), config.host, ports(config.base_port, n)["rockusb"]).start()
           for n, board in boards.items()}
    server = BenchHTTPServer((config.host, config.base_port), boards, host_key)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.serve_in_thread()
    if config.owner:
        threading.Thread(target=_watch_owner, args=(config.owner, stop), daemon=True, name="owner-watch").start()
    coordinator = f"{config.host}:{coordinator_port(config.base_port)}"
    rockusb = ",".join(u.endpoint for u in usb.values())
    lab = LabServices(config.state_dir / "lab", coordinator, {
        n: board_resources(config.url, config.host, ports(config.base_port, n), n, ROOT_PASSWORD, rockusb)
        for n in boards})
    try:
        lab.start()
    except LabError:
        server.shutdown()
        for n, board in boards.items():
            usb[n].stop()
            board.close()
        raise
    state = {"pid": os.getpid(), "url": config.url, "host": config.host, "base_port": config.base_port,
             "coordinator": coordinator, "places": [place_name(n) for n in boards],
             "boards": {n: ports(config.base_port, n) for n in boards}, "timescale": config.timescale,
             "host_key": host_key, "owner": config.owner}
    (config.state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    log.info("bench ready at %s with %d board(s)", config.url, len(boards))
    try:
        stop.wait()
    finally:
        lab.stop()
        server.shutdown()
        for n, board in boards.items():
            usb[n].stop()
            board.close()
        (config.state_dir / "state.json").unlink(missing_ok=True)


OWNER_POLL = 1.0


def _watch_owner(owner: int, stop: threading.Event) -> None:
    """Stop the bench once the run that started it is gone (killed with -9: nothing else will)."""
    while not stop.wait(OWNER_POLL):
        if not _alive(owner):
            log.warning("the run that started this bench (pid %d) is gone: stopping", owner)
            stop.set()


def orphaned(state: dict) -> bool:
    """A bench whose starting run is gone (it stops itself within a second; this says so sooner)."""
    return bool(state.get("owner")) and not _alive(state["owner"])


def _alive(pid: int) -> bool:
    """True while the process runs; reaps it when it is our own child (pytest started it)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_state(state_dir: Path | None = None) -> dict | None:
    path = Path(state_dir or bench_dir()) / "state.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if not _alive(state["pid"]):
        path.unlink(missing_ok=True)  # left behind by a bench that died
        return None
    return state


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def up(config: BenchConfig) -> dict:
    """Start the bench in the background and wait until it answers; returns its state."""
    state = read_state(config.state_dir)
    if state:
        raise BenchError(f"a bench is already running (pid {state['pid']}, {state['url']}); stop it with 'hil twin down'")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "hil.twin.bench", "--boards", str(config.boards), "--base-port",
           str(config.base_port), "--host", config.host, "--timescale", str(config.timescale),
           "--image", config.image, "--state-dir", str(config.state_dir)] + (["--reflash"] if config.reflash else []) \
        + (["--owner", str(config.owner)] if config.owner else [])
    log_path = config.state_dir / "bench.log"
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "HIL_BENCH_DIR": str(config.state_dir)})
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise BenchError("the bench exited while starting:\n  " + "\n  ".join(tail))
        state = read_state(config.state_dir)
        if state:
            try:
                get(state["url"] + "/health", timeout=1.0)
                return state
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise BenchError(f"the bench did not answer within {UP_TIMEOUT:.0f} s (log: {log_path})")


def down(state_dir: Path | None = None) -> bool:
    """Stop a running bench; returns False when none was running. Leaves no QEMU behind."""
    state_dir = Path(state_dir or bench_dir())
    state = read_state(state_dir)
    if not state:
        _reap_children(state_dir)
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(state["pid"]):
            break
        time.sleep(0.05)
    else:
        os.kill(state["pid"], signal.SIGKILL)
    _reap_children(state_dir)
    (state_dir / "state.json").unlink(missing_ok=True)
    return True


def _reap_children(state_dir: Path) -> None:
    """Kill any QEMU, coordinator or exporter whose pidfile is still in the bench directory
    (left behind by a bench that was killed hard)."""
    for pidfile in [*state_dir.glob("board-*/run/qemu.pid"), *state_dir.glob("lab/*.pid")]:
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "qemu" in cmdline or "labgrid" in cmdline:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)


def status(state_dir: Path | None = None) -> dict | None:
    state = read_state(state_dir)
    if not state:
        return None
    return {**state, "boards": json.loads(get(state["url"] + "/boards"))}


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m hil.twin.bench", description="Run the virtual bench in the foreground")
    p.add_argument("--boards", type=int, default=1)
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--timescale", type=float, default=1.0)
    p.add_argument("--image", default=DEFAULT_IMAGE)
    p.add_argument("--reflash", action="store_true")
    p.add_argument("--owner", type=int, default=None, help="stop when this process is gone")
    p.add_argument("--state-dir", type=Path, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = BenchConfig(boards=a.boards, base_port=a.base_port, host=a.host, timescale=a.timescale,
                         image=a.image, reflash=a.reflash, owner=a.owner, state_dir=a.state_dir or bench_dir())
    try:
        serve(config)
    except (BenchError, LabError) as e:
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
