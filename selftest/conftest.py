"""Fixtures of the project's own tests: the twin's images and real benches on free ports.

Benches started here live in temporary state directories on their own port ranges, so
they never touch a bench the developer runs with ``hil twin up``.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from hil.paths import REPO, twin_dir
from hil.twin import bench as benchmod
from hil.twin import lab

TWIN_ENV = REPO / "env" / "twin.yaml"
FARM_ENV = REPO / "env" / "farm.yaml"


@pytest.fixture(scope="session")
def twin_images() -> Path:
    """The twin's firmware images, built (or found up to date) once per session."""
    from hil.twin import build

    build.build()
    return twin_dir() / "images"


def _free_base_port(start: int = 23000) -> int:
    for base in range(start, 30000, 100):
        try:
            for port in (base, base + 11, base + 12, base + 21, base + 22, base + 31, base + 32):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range for a test bench")


def _rewrite(source: Path, dest: Path, replacements) -> Path:
    """A committed env file with this bench's ports and places; every value it changes must be there."""
    text = source.read_text()
    for old, new in replacements:
        assert old in text, f"{source.name} no longer has {old!r}: update the selftests' rewrite"
        text = text.replace(old, new)
    dest.write_text(text)
    return dest


class Bench:
    """A running bench started by a test, with helpers to reach it."""

    def __init__(self, config: benchmod.BenchConfig, state: dict) -> None:
        self.config, self.state = config, state
        self.url = state["url"]

    def ports(self, board: int = 1) -> dict:
        return benchmod.ports(self.config.base_port, board)

    def call(self, method: str, path: str, body: bytes | None = None, timeout: float = 60.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def board(self, n: int = 1) -> dict:
        return json.loads(self.call("GET", f"/board/{n}")[1])

    def _bench_values(self) -> list[tuple[str, str]]:
        """What every committed twin env file says of the bench, as this bench has it."""
        return [("coordinator_address: 127.0.0.1:21001",
                 f"coordinator_address: 127.0.0.1:{benchmod.coordinator_port(self.config.base_port)}"),
                ("base_port: 21000", f"base_port: {self.config.base_port}"),
                ("timescale: 1.0", f"timescale: {self.config.timescale:g}")]

    def env_file(self, tmp_path: Path, board: int = 1) -> Path:
        """env/twin.yaml as committed, pointed at this bench's coordinator and board."""
        return _rewrite(TWIN_ENV, tmp_path / f"twin-{self.config.base_port}-{board}.yaml",
                        [*self._bench_values(), ("name: twin-1", f"name: twin-{board}")])

    def farm_env_file(self, tmp_path: Path) -> Path:
        """env/farm.yaml as committed, pointed at this bench's coordinator (places twin-1..twin-N)."""
        return _rewrite(FARM_ENV, tmp_path / f"farm-{self.config.base_port}.yaml",
                        [*self._bench_values(), ("boards: 2", f"boards: {self.config.boards}")])

    def environment(self, tmp_path: Path, board: int = 1):
        """A labgrid Environment on this bench's place.

        labgrid keeps one coordinator session per process (``RemotePlaceManager`` is a
        singleton that connects on the first RemotePlace it sees), so a test process that
        uses several benches must drop the session of the previous one first.
        """
        from labgrid import Environment
        from labgrid.resource.common import ResourceManager
        from labgrid.resource.remote import RemotePlaceManager

        manager = ResourceManager.instances.get(RemotePlaceManager)
        if manager is not None and manager.url != self.state["coordinator"]:
            del ResourceManager.instances[RemotePlaceManager]
        return Environment(str(self.env_file(tmp_path, board)))

    def acquire(self, board: int = 1) -> None:
        """Hold the board's place for this user, as the suite does before it builds targets."""
        lab.acquire(self.state["coordinator"], f"twin-{board}")

    def stop(self) -> None:
        benchmod.down(self.config.state_dir)


@pytest.fixture(scope="session")
def start_bench(twin_images, tmp_path_factory):
    """Factory: start a bench (real QEMU, HTTP, TCP) on free ports; all are stopped at the end."""
    started: list[Bench] = []

    def start(boards: int = 1, timescale: float = 0.05, image: str = "twin-good") -> Bench:
        config = benchmod.BenchConfig(boards=boards, base_port=_free_base_port(), timescale=timescale,
                                      image=image, state_dir=tmp_path_factory.mktemp("bench"))
        bench = Bench(config, benchmod.up(config))
        started.append(bench)
        return bench

    yield start
    for bench in started:
        bench.stop()
