"""The bench's labgrid infrastructure: a coordinator and an exporter on loopback.

A lab publishes its boards as labgrid places; users reach them through ``RemotePlace``
with ``labgrid-client`` and ``pytest --lg-env``. The bench does the same: its exporter
publishes each board's outlet, console, SSH service, maskrom button and rockusb loader
as static resources in group ``twin-N``, and place ``twin-N`` matches that group.
Holding a place (acquire, release, reserve) is a lab user's business: ``hil.lab.places``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hil.twin import boardusb

EXPORTER_NAME = "twin"
READY_TIMEOUT = 30.0


class LabError(RuntimeError):
    """The coordinator or exporter did not come up; the message points at its log."""


def place_name(index: int) -> str:
    return f"twin-{index}"


# The outlet's URL carries a login, as many lab PDUs' do (http://user:password@pdu/...): the
# bench ignores it, and the suite must keep it out of every output it writes.
PDU_USER, PDU_PASSWORD = "admin", "pdu-Hq7t-2xv"


def board_resources(url: str, host: str, ports: dict, index: int, password: str, rockusb: str = "") -> dict:
    """The resources of one board, as labgrid's standard classes plus the project's loader.

    The loader names every board's Rockusb device of the bench (``rockusb``): the real
    rkdeveloptool sees all boards of its host in loader mode, as on a lab host's USB."""
    scheme, _, rest = url.partition("://")
    outlet = f"{scheme}://{PDU_USER}:{PDU_PASSWORD}@{rest}/outlet/{{index}}/{{value}}"
    return {
        "NetworkPowerPort": {"model": "simplerest", "host": outlet, "index": index},
        "NetworkSerialPort": {"host": host, "port": ports["console"], "protocol": "raw", "speed": 115200},
        "NetworkService": {"address": host, "port": ports["ssh"], "username": "root", "password": password},
        "HttpDigitalOutput": {"url": f"{url}/maskrom/{index}", "body_asserted": "1", "body_deasserted": "0"},
        "TwinUSBLoader": {"url": url, "index": index, "rockusb": rockusb,
                          "busnum": boardusb.USB_BUS, "path": f"{boardusb.USB_BUS}-{index}"},
    }


class LabServices:
    """Starts labgrid's coordinator and exporter for a bench and stops them with it."""

    def __init__(self, workdir: Path, coordinator: str, boards: dict[int, dict]) -> None:
        self.workdir = Path(workdir)
        self.coordinator = coordinator
        self.boards = boards  # index -> resources (see board_resources)
        self._procs: list[subprocess.Popen] = []

    def start(self) -> None:
        coord_dir = self.workdir / "coordinator"
        coord_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("places.yaml", "resources.yaml"):
            (coord_dir / stale).unlink(missing_ok=True)
        places = {
            place_name(n): {
                "comment": f"virtual RK3576 bench, board {n}",
                "tags": {"board": "rk3576", "twin": str(n)},
                "matches": [{"exporter": EXPORTER_NAME, "group": place_name(n), "cls": "*"}],
            }
            for n in self.boards
        }
        (coord_dir / "places.yaml").write_text(yaml.safe_dump(places))
        exporter_cfg = self.workdir / "exporter.yaml"
        exporter_cfg.write_text(yaml.safe_dump({place_name(n): res for n, res in self.boards.items()}))
        env = {**os.environ, "GRPC_ENABLE_FORK_SUPPORT": "0", "PYTHONUNBUFFERED": "1"}
        self._spawn([sys.executable, "-m", "labgrid.remote.coordinator", "-l", self.coordinator],
                    coord_dir, "coordinator.log", env)
        self._await(self.workdir / "coordinator.log", "Coordinator ready")
        host = self.coordinator.rsplit(":", 1)[0]
        self._spawn([sys.executable, "-m", "labgrid.remote.exporter", "-c", self.coordinator, "-n", EXPORTER_NAME,
                     "--hostname", host, str(exporter_cfg)], self.workdir, "exporter.log", env)
        self._await(self.workdir / "exporter.log", "Exporter ready")

    def _spawn(self, cmd: list[str], cwd: Path, log_name: str, env: dict) -> None:
        with open(self.workdir / log_name, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._procs.append(proc)
        # lets 'hil twin down' clean up even after the bench itself was killed
        (self.workdir / log_name).with_suffix(".pid").write_text(f"{proc.pid}\n")

    def _await(self, log: Path, marker: str) -> None:
        proc = self._procs[-1]
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n  ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
                self.stop()
                raise LabError(f"labgrid {log.stem} did not become ready (see {log}):\n  {tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        self._procs.clear()
        for pidfile in self.workdir.glob("*.pid"):
            pidfile.unlink()

