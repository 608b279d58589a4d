"""A started bench as the program that started it holds it: tests, benchmarks and tools.

The committed env files describe the default bench (base port 21000, one timescale);
``BenchHandle`` rewrites them for a bench on other ports, and checks that every value it
replaces is still there, so a change to an env file cannot silently leave a bench unused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from hil.lab import places
from hil.paths import REPO
from hil.twin import bench as benchmod

TWIN_ENV = REPO / "env" / "twin.yaml"
TWIN_RKDEVELOPTOOL_ENV = REPO / "env" / "twin-rkdeveloptool.yaml"  # flashed with the real rkdeveloptool
FARM_ENV = REPO / "env" / "farm.yaml"


def _rewrite(source: Path, dest: Path, replacements) -> Path:
    """A committed env file with this bench's ports and places; every value it changes must be there."""
    text = source.read_text()
    for old, new in replacements:
        if old not in text:
            raise ValueError(f"{source.name} no longer has {old!r}: update BenchHandle's rewrite")
        text = text.replace(old, new)
    dest.write_text(text)
    return dest


class BenchHandle:
    """A bench this program started (``hil.twin.bench.up``), with what a test or a benchmark needs
    to reach it: its HTTP API, env files pointed at it, a labgrid Environment, its places."""

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

    def env_file(self, tmp_path: Path, board: int = 1, *, real_tool: bool = False) -> Path:
        """env/twin.yaml as committed (env/twin-rkdeveloptool.yaml with ``real_tool``), pointed at
        this bench's coordinator and board."""
        if real_tool:
            return _rewrite(TWIN_RKDEVELOPTOOL_ENV, tmp_path / f"twin-rkdeveloptool-{self.config.base_port}-{board}.yaml",
                            [*self._bench_values(), ("name: twin-1", f"name: twin-{board}"),
                             ("../images/loader/", f"{REPO}/images/loader/")])
        return _rewrite(TWIN_ENV, tmp_path / f"twin-{self.config.base_port}-{board}.yaml",
                        [*self._bench_values(), ("name: twin-1", f"name: twin-{board}")])

    def farm_env_file(self, tmp_path: Path) -> Path:
        """env/farm.yaml as committed, pointed at this bench's coordinator (places twin-1..twin-N)."""
        return _rewrite(FARM_ENV, tmp_path / f"farm-{self.config.base_port}.yaml",
                        [*self._bench_values(), ("boards: 2", f"boards: {self.config.boards}")])

    def environment(self, tmp_path: Path, board: int = 1, *, real_tool: bool = False):
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
        return Environment(str(self.env_file(tmp_path, board, real_tool=real_tool)))

    def acquire(self, board: int = 1) -> None:
        """Hold the board's place for this user, as the suite does before it builds targets."""
        places.acquire(self.state["coordinator"], f"twin-{board}")

    def stop(self) -> None:
        benchmod.down(self.config.state_dir)
