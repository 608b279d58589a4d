"""Debian's real, unmodified rkdeveloptool flashes twin boards (env/twin-rkdeveloptool.yaml).

The tool runs with the twin's stand-in libusb in its own environment and talks Rockusb to
each board's device on the bench (``hil.twin.rockusb``, ``hil.twin.boardusb``): the suite's
RKDeveloptoolDriver and the strategy flash through it as on a lab host, and its real failures
reach the driver's errors with the tool's own words.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest

from hil.lab import places
from hil.lab.twinflash import TwinUSBLoader
from hil.paths import REPO, twin_dir
from hil.rockchip import flashtools
from hil.twin import boardusb

pytestmark = pytest.mark.skipif(shutil.which("rkdeveloptool") is None,
                                reason="Debian's rkdeveloptool is not installed: scripts/setup installs it")

IMAGES = twin_dir() / "images"
RK3588_LOADER = REPO / "images" / "loader" / "rk3588_spl_loader_twin.bin"


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=2, timescale=0.05)


@pytest.fixture
def target(bench, tmp_path):
    bench.acquire(1)
    t = bench.environment(tmp_path, 1, real_tool=True).get_target("main")
    yield t
    t.cleanup()
    places.release(bench.state["coordinator"], "twin-1")


def tool(target, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """rkdeveloptool as the driver runs it for this target's loader: the stand-in in its environment only."""
    loader = target.get_resource(TwinUSBLoader)
    return subprocess.run(loader.wrap_command(["rkdeveloptool", *args]), capture_output=True, text=True,
                          timeout=timeout)


def in_maskrom(bench, n: int = 1) -> None:
    """Power off, hold the maskrom button, power on: the BootROM's Maskrom device."""
    bench.call("GET", f"/outlet/{n}/0")
    bench.call("PUT", f"/maskrom/{n}", b"1")
    bench.call("GET", f"/outlet/{n}/1")
    bench.call("PUT", f"/maskrom/{n}", b"0")
    assert bench.board(n)["mode"] == "maskrom"


def disk_head(bench, n: int, size: int) -> bytes:
    with open(bench.config.state_dir / f"board-{n}" / "emmc" / "disk.img", "rb") as f:
        return f.read(size)


def test_the_real_tool_writes_the_image_at_lba_0_and_the_board_boots_it(target, bench):
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("shell")
    image = IMAGES / "twin-rkllm-1.3.0.img"
    record = strategy.flash(str(image))
    assert record.state == "shell"
    assert disk_head(bench, 1, image.stat().st_size) == image.read_bytes(), "wl 0 wrote the image's bytes at LBA 0"
    assert bench.board(1)["image"] == "twin-rkllm-1.3.0", "the board booted what the tool wrote"
    shell = target.get_driver("ShellDriver")
    assert "twin-rkllm-1.3.0" in "\n".join(shell.run_check("cat /etc/build-info"))
    strategy.flash(str(IMAGES / "twin-good.img"))  # back to the reference image for the next tests
    assert bench.board(1)["image"] == "twin-good"


def test_each_command_against_a_board_in_maskrom(target, bench):
    in_maskrom(bench)
    listed = tool(target, "ld")
    (device,) = flashtools.parse_ld(listed.stdout)
    assert (device.vid, device.pid, device.mode) == (0x2207, 0x350E, "Maskrom")
    assert device.bus_port() == (boardusb.USB_BUS, 1) and device.location == "301"
    assert "Read Flash Info failed!" in tool(target, "rfi").stdout, "storage needs the loader first"
    assert "Downloading bootloader succeeded." in tool(target, "db", str(REPO / "images/loader/"
                                                                          "rk3576_spl_loader_twin.bin")).stdout
    info = tool(target, "rfi").stdout
    assert "Flash Info:" in info and "Flash Size: 8192 MB" in info
    assert "Chip Info:" in tool(target, "rci").stdout
    capacity = 8192 * 2048
    image = IMAGES / "twin-good.img"
    beyond = tool(target, "wl", str(capacity - 8), str(image))
    assert "Write LBA failed!" in beyond.stdout and beyond.returncode != 0, beyond.stdout
    assert "Reset Device OK." in tool(target, "rd").stdout
    target.get_driver("RK3576Strategy").transition("shell")  # booted what LBA 0 holds: twin-good


def test_a_loader_for_another_soc_is_refused_with_the_tools_words(bench, tmp_path):
    env_file = bench.env_file(tmp_path, 1, real_tool=True)
    env_file.write_text(env_file.read_text().replace("rk3576_spl_loader_twin.bin", "rk3588_spl_loader_twin.bin"))
    bench.acquire(1)
    from labgrid import Environment

    target = Environment(str(env_file)).get_target("main")
    try:
        in_maskrom(bench)
        with pytest.raises(flashtools.LoaderDownloadFailed) as e:
            target.get_driver("RKDeveloptoolDriver").flash(str(IMAGES / "twin-good.img"))
        assert "Downloading bootloader failed!" in e.value.output
        assert bench.board(1)["mode"] == "maskrom", "the BootROM did not run the foreign loader"
        assert "Read Flash Info failed!" in tool(target, "rfi").stdout, "no loader runs: nothing was written"
        target.get_driver("RK3576Strategy").transition("off")
    finally:
        target.cleanup()
        places.release(bench.state["coordinator"], "twin-1")


def test_no_device_and_a_board_pulled_in_the_middle_of_the_write(target, bench):
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("off")
    assert "not found any devices!" in tool(target, "ld").stdout
    flash = target.get_driver("RKDeveloptoolDriver", activate=False)
    with pytest.raises(flashtools.NoLoaderDevice):
        flash.loader_device()

    in_maskrom(bench)
    assert "succeeded" in tool(target, "db", str(REPO / "images/loader/rk3576_spl_loader_twin.bin")).stdout
    loader = target.get_resource(TwinUSBLoader)
    writer = subprocess.Popen(loader.wrap_command(["rkdeveloptool", "wl", "0", str(IMAGES / "twin-good.img")]),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    try:
        while b"(10%)" not in seen:  # the write is under way
            chunk = writer.stdout.read1(4096)
            assert chunk, f"the tool ended before writing: {seen[-500:]!r}"
            seen += chunk
        bench.call("GET", "/outlet/1/0")  # the board loses power: its USB device is gone
        seen += writer.communicate(timeout=120)[0]
    finally:
        if writer.poll() is None:
            writer.kill()
            pytest.fail("the tool hung after the device went away")
    out = seen.decode()
    assert writer.returncode != 0 and "Write LBA failed!" in out, out[-500:]
    with pytest.raises(flashtools.WriteFailed):
        flashtools.check_wl(out)


FLASH_ONE = textwrap.dedent("""
    import logging, sys
    from labgrid import Environment
    logging.basicConfig(level=logging.INFO, format="%(created).3f %(name)s %(message)s")
    env_file, image = sys.argv[1:3]
    target = Environment(env_file).get_target("main")
    strategy = target.get_driver("RK3576Strategy")
    strategy.transition("shell")
    strategy.flash(image)
    target.cleanup()
""")
_LOCK_LINE = re.compile(r"^(\d+\.\d+) hil\.lab\.flashlock flash lock of \S+ (taken|released) by", re.M)


def test_two_boards_of_one_host_flashed_at_once_take_turns_and_each_boots_its_own_image(bench, tmp_path):
    """A fan-out: two processes flash the two boards of this host through the real tool at once.
    rkdeveloptool cannot pick a device, so the host's flash lock makes them take turns, and the
    driver checks the one device it sees is its own board before every write."""
    for n in (1, 2):
        bench.acquire(n)
    images = {1: IMAGES / "twin-rkllm-1.3.0.img", 2: IMAGES / "twin-old-driver.img"}
    env = {**__import__("os").environ, "HIL_LOCK_DIR": str(tmp_path / "locks")}
    procs = {n: subprocess.Popen([sys.executable, "-c", FLASH_ONE,
                                  str(bench.env_file(tmp_path, n, real_tool=True)), str(images[n])],
                                 cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for n in (1, 2)}
    logs = {}
    try:
        for n, proc in procs.items():
            logs[n] = proc.communicate(timeout=600)[0]
            assert proc.returncode == 0, logs[n][-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        for n in (1, 2):
            places.release(bench.state["coordinator"], f"twin-{n}")
    spans = []
    for n, text in logs.items():
        marks = {kind: float(t) for t, kind in _LOCK_LINE.findall(text)}
        assert set(marks) == {"taken", "released"}, text[-2000:]
        spans.append((marks["taken"], marks["released"], n))
    (a0, a1, _), (b0, b1, _) = sorted(spans)
    assert a1 <= b0, f"the two flashes overlapped: {datetime.fromtimestamp(a1)} > {datetime.fromtimestamp(b0)}"
    for n, image in images.items():
        assert bench.board(n)["image"] == image.stem, f"board {n} booted another image"
        assert disk_head(bench, n, 1024) == image.read_bytes()[:1024]
