"""Fixtures of the project's own tests: the twin's images and real benches on free ports.

Benches started here live in temporary state directories on their own port ranges, so
they never touch a bench the developer runs with ``hil twin up``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hil.paths import twin_dir
from hil.twin import bench as benchmod
from hil.twin.bench import free_base_port
from hil.twin.handle import BenchHandle


@pytest.fixture(scope="session")
def twin_images() -> Path:
    """The twin's firmware images, built (or found up to date) once per session."""
    from hil.twin import build

    build.build()
    return twin_dir() / "images"


@pytest.fixture(scope="session")
def start_bench(twin_images, tmp_path_factory):
    """Factory: start a bench (real QEMU, HTTP, TCP) on free ports; all are stopped at the end."""
    started: list[BenchHandle] = []

    def start(boards: int = 1, timescale: float = 0.05, image: str = "twin-good") -> BenchHandle:
        config = benchmod.BenchConfig(boards=boards, base_port=free_base_port(), timescale=timescale,
                                      image=image, state_dir=tmp_path_factory.mktemp("bench"), owner=os.getpid())
        bench = BenchHandle(config, benchmod.up(config))
        started.append(bench)
        return bench

    yield start
    with ThreadPoolExecutor(max_workers=len(started) or 1) as pool:  # each waits for its QEMUs to go
        list(pool.map(BenchHandle.stop, started))
