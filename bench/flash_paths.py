"""Flash benchmark of the virtual bench: the real rkdeveloptool against the bench's flash service.

Prints, as medians over --runs flashes of the same image into the same board (loader mode
first, then timed: the flash driver's ``flash`` and ``reset``, the board not yet booted):
  - the flash service path (env/twin.yaml's TwinFlashDriver, the reference),
  - the real-tool path (env/twin-rkdeveloptool.yaml: Debian's rkdeveloptool through the
    twin's stand-in libusb and the board's Rockusb device), and its ratio to the reference.

Run: .venv/bin/python bench/flash_paths.py [--runs 3] [--image twin-good]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.lab import places  # noqa: E402
from hil.paths import twin_dir  # noqa: E402
from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402


def flash_seconds(bench: BenchHandle, tmp: Path, image: Path, real_tool: bool, runs: int) -> list[float]:
    """Seconds of ``flash`` + ``reset`` from loader mode, once per run, on board 1."""
    target = bench.environment(tmp, 1, real_tool=real_tool).get_target("main")
    try:
        strategy = target.get_driver("RK3576Strategy")
        times = []
        for _ in range(runs):
            strategy.transition("loader")
            start = time.monotonic()
            strategy.flasher.flash(str(image))
            strategy.flasher.reset()
            times.append(time.monotonic() - start)
            strategy.transition("off")
        return times
    finally:
        target.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--image", default="twin-good")
    args = p.parse_args()
    image = twin_dir() / "images" / f"{args.image}.img"
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=1, base_port=free_base_port(27000), timescale=0.05,
                                      state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            bench.acquire(1)
            service = flash_seconds(bench, Path(tmp), image, False, args.runs)
            tool = flash_seconds(bench, Path(tmp), image, True, args.runs)
            places.release(bench.state["coordinator"], "twin-1")
        finally:
            bench.stop()
    size = image.stat().st_size / 2**20
    ref, real = statistics.median(service), statistics.median(tool)
    print(f"image {args.image}: {size:.1f} MiB, {args.runs} flashes each (flash + reset, from loader mode)")
    print(f"  flash service (TwinFlashDriver):          median {ref:6.2f} s  {size / ref:6.1f} MiB/s  (reference)")
    print(f"  real rkdeveloptool (RKDeveloptoolDriver): median {real:6.2f} s  {size / real:6.1f} MiB/s  "
          f"ratio {real / ref:.2f}x")


if __name__ == "__main__":
    main()
