"""Debian's real rkdeveloptool against twin boards: the libusb stub and Rockusb servers.

No QEMU: each board is a :class:`~hil.twin.rockusb.DiskBoard` (a sparse raw file) behind
its own in-process :class:`~hil.twin.rockusb.RockusbServer`; the unmodified
``/usr/bin/rkdeveloptool`` runs as a subprocess with the stub first on its own
``LD_LIBRARY_PATH`` (never this process's). Every run is bounded by a timeout, and the
assertions are on the tool's own words.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
import zlib
from pathlib import Path

import attr
import pytest

from hil.paths import REPO
from hil.twin import loader, rockusb, usbstub

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TOOL_TIMEOUT = 60
SECTORS = 8192  # 4 MiB boards keep the sparse files small


def _install_rkdeveloptool() -> str | None:
    """The tool, installed with apt when missing and this process may; None when it cannot be."""
    found = shutil.which("rkdeveloptool")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "rkdeveloptool"],
                   env=env, capture_output=True, timeout=600, check=False)
    return shutil.which("rkdeveloptool")


@pytest.fixture(scope="module")
def tool() -> str:
    path = _install_rkdeveloptool()
    if path is None:
        pytest.skip("rkdeveloptool is not installed and cannot be installed here "
                    "(apt-get install rkdeveloptool needs root; scripts/setup installs it)")
    return path


@pytest.fixture(scope="module")
def stub(tmp_path_factory) -> Path:
    return usbstub.build(tmp_path_factory.mktemp("usbstub"))


@pytest.fixture
def servers():
    started: list[rockusb.RockusbServer] = []

    def start(board) -> rockusb.RockusbServer:
        server = rockusb.serve(board)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@attr.s(auto_attribs=True, frozen=True)
class Run:
    rc: int
    out: str  # stdout + stderr, ANSI codes removed
    seconds: float


@pytest.fixture
def rk(tool, stub):
    """Run rkdeveloptool against the given endpoints; the stub is in its environment only."""

    def run(*args: str, endpoints=(), timeout: float = TOOL_TIMEOUT, cwd: Path | None = None,
            timeout_ms: int | None = None) -> Run:
        env = usbstub.tool_env([e if isinstance(e, str) else e.endpoint for e in endpoints], stub,
                               timeout_ms=timeout_ms)
        start = time.monotonic()
        proc = subprocess.run([tool, *map(str, args)], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, check=False)
        return Run(proc.returncode, ANSI.sub("", proc.stdout + proc.stderr), time.monotonic() - start)

    return run


def board(tmp_path: Path, name: str = "emmc", **kw) -> rockusb.DiskBoard:
    kw.setdefault("capacity", SECTORS)
    return rockusb.DiskBoard(tmp_path / f"{name}.img", **kw)


def eventually(check, timeout: float = 5.0) -> bool:
    """A device resets once its reply has gone, a moment after the tool has it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ld_line(n: int, location: str, mode: str) -> str:
    return f"DevNo={n}\tVid=0x2207,Pid=0x350e,LocationID={location}\t{mode}"


def gpt_image(parts: list[tuple[str, int, int]], total: int) -> bytes:
    """A GPT (protective MBR, header, 128 entries) as sgdisk writes one: LBA 0-33."""
    entries = bytearray(128 * 128)
    for i, (name, first, last) in enumerate(parts):
        entries[i * 128:(i + 1) * 128] = (
            uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4").bytes_le + uuid.uuid4().bytes_le
            + struct.pack("<QQQ", first, last, 0) + name.encode("utf-16-le").ljust(72, b"\0"))
    header = bytearray(struct.pack(
        "<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0, 1, total - 1, 34, total - 34,
        uuid.uuid4().bytes_le, 2, 128, 128, zlib.crc32(entries)))
    struct.pack_into("<I", header, 16, zlib.crc32(header))
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<BBBBBBBBII", 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, min(total - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(header).ljust(512, b"\0") + bytes(entries)


# ------------------------------------------------------------------ listing


def test_ld_lists_the_board_with_its_location_and_mode(rk, servers, tmp_path):
    maskrom = servers(board(tmp_path, "a", bus=1, ports=(9,)))
    run = rk("ld", endpoints=[maskrom])
    assert run.rc == 0 and ld_line(1, "109", "Maskrom") in run.out

    loader_mode = servers(board(tmp_path, "b", bus=2, ports=(1, 3), state="loader"))
    assert ld_line(1, "203", "Loader") in rk("ld", endpoints=[loader_mode]).out


def test_two_boards_are_two_devices_with_their_own_locations(rk, servers, tmp_path):
    first = servers(board(tmp_path, "a", bus=1, ports=(1,)))
    second = servers(board(tmp_path, "b", bus=3, ports=(2, 4), state="loader"))
    run = rk("ld", endpoints=[first, second])
    assert ld_line(1, "101", "Maskrom") in run.out
    assert ld_line(2, "304", "Loader") in run.out
    # a storage command wants exactly one device, as with two boards on a real hub
    assert "Found too many rockusb devices, please plug devices out!" in rk("rfi", endpoints=[first, second]).out
    # each board is reached through its own endpoint
    assert "Flash Info:" in rk("rfi", endpoints=[second]).out


def test_no_device(rk, servers, tmp_path):
    assert "not found any devices!" in rk("ld").out
    run = rk("rfi")
    assert run.rc != 0 and "Did not find any rockusb device, please plug device in!" in run.out
    # an endpoint nobody listens on is no device either
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    assert "not found any devices!" in rk("ld", endpoints=[dead]).out
    # a board that is off (booted, not in a download mode) is not on the bus
    assert "not found any devices!" in rk("ld", endpoints=[servers(board(tmp_path, state="off"))]).out


def test_a_silent_endpoint_does_not_hang_the_tool(rk):
    """A service that accepts and never answers: the stub's deadlines end the query."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        run = rk("ld", endpoints=[f"127.0.0.1:{listener.getsockname()[1]}"], timeout=30)
    finally:
        listener.close()
    assert "not found any devices!" in run.out
    assert run.seconds < 15


# ------------------------------------------------------------------ Maskrom and db


def test_maskrom_without_db_fails_storage_commands(rk, servers, tmp_path):
    server = servers(board(tmp_path))
    run = rk("rfi", endpoints=[server])
    assert run.rc != 0 and "Read Flash Info failed!" in run.out
    run = rk("ppt", endpoints=[server])
    assert run.rc != 0
    for line in ("Read GPT failed!", "Read parameter failed!", "Not found any partition table!"):
        assert line in run.out
    assert "Write LBA failed!" in rk("wl", 0, loader.write(tmp_path), endpoints=[server]).out


def test_db_with_the_twin_loader_then_storage_commands(rk, servers, tmp_path):
    disk = board(tmp_path, bus=1, ports=(9,))
    server = servers(disk)
    run = rk("db", loader.write(tmp_path), endpoints=[server])
    assert run.rc == 0 and "Downloading bootloader succeeded." in run.out
    assert disk.loader_ready()
    # the usbplug enumerates with bcdUSB 0x0200: still listed as Maskrom
    assert ld_line(1, "109", "Maskrom") in rk("ld", endpoints=[server]).out

    run = rk("rfi", endpoints=[server])
    assert run.rc == 0 and "Flash Info:" in run.out
    assert f"Flash Size: {SECTORS * 512 // 2**20} MB" in run.out
    assert "Block Size: 512 KB" in run.out and "Access Time: 40" in run.out
    run = rk("rci", endpoints=[server])
    assert run.rc == 0 and re.search(r"Chip Info:\s+36 37 35 33 0 0", run.out)
    assert "Flash ID: 45 4D 4D 43 20" in rk("rid", endpoints=[server]).out
    assert "Test Device OK." in rk("td", endpoints=[server]).out
    assert "Direct LBA:\tenabled" in rk("rcb", endpoints=[server]).out


def test_db_refuses_a_loader_for_another_soc(rk, servers, tmp_path):
    disk = board(tmp_path)
    server = servers(disk)
    other = loader.write(tmp_path, chip="RK3588")
    assert loader.parse(other.read_bytes()).chip_type == loader.chip_type("RK3588")
    run = rk("db", other, endpoints=[server])
    assert run.rc != 0 and "Downloading bootloader failed!" in run.out
    assert not disk.loader_ready()
    assert "Read Flash Info failed!" in rk("rfi", endpoints=[server]).out


def test_db_in_loader_mode_is_refused_by_the_tool(rk, servers, tmp_path):
    server = servers(board(tmp_path, state="loader"))
    run = rk("db", loader.write(tmp_path), endpoints=[server])
    assert run.rc != 0 and "The device does not support this operation!" in run.out


def test_the_tool_unpacks_the_twin_loader_to_its_markers(rk, tmp_path):
    """rkdeveloptool's own parser and RC4 read the file: its entries come out as the marker."""
    path = loader.write(tmp_path)
    out = tmp_path / "unpacked"
    out.mkdir()
    run = rk("unpack", path, cwd=out)
    assert "471 num:1, 472 num:1, loader num:2" in run.out
    assert (out / "rk3576_ddr_twin").read_bytes().startswith(loader.marker("RK3576", "471"))
    assert (out / "rk3576_usbplug_twin").read_bytes().startswith(loader.marker("RK3576", "472"))
    assert (out / "FlashBoot").read_bytes().startswith(loader.marker("RK3576", "FlashBoot"))


# ------------------------------------------------------------------ storage


def test_wl_writes_the_bytes_at_the_lbas_and_rl_reads_them(rk, servers, tmp_path):
    disk = board(tmp_path, state="loader")
    server = servers(disk)
    image = tmp_path / "image.bin"
    data = os.urandom(200 * 1024 + 123)  # several 128-sector commands and a partial sector
    image.write_bytes(data)
    run = rk("wl", 64, image, endpoints=[server])
    assert run.rc == 0 and "Write LBA from file (100%)" in run.out
    raw = disk.path.read_bytes()
    assert raw[64 * 512:64 * 512 + len(data)] == data
    end = 64 * 512 + len(data)
    assert raw[end:-(-end // 512) * 512] == bytes(-end % 512)  # the last sector is padded with zeros
    assert raw[:64 * 512] == bytes(64 * 512)

    sectors = -(-len(data) // 512)
    back = tmp_path / "back.bin"
    run = rk("rl", 64, sectors, back, endpoints=[server])
    assert run.rc == 0 and back.read_bytes()[:len(data)] == data


def test_ppt_prints_the_gpt_written_with_wl(rk, servers, tmp_path):
    server = servers(board(tmp_path, state="loader"))
    gpt = tmp_path / "gpt.img"
    gpt.write_bytes(gpt_image([("uboot", 0x4000, 0x5FFF), ("boot", 0x6000, 0x7FFF)], SECTORS))
    assert rk("wl", 0, gpt, endpoints=[server]).rc == 0
    run = rk("ppt", endpoints=[server])
    assert run.rc == 0 and "**********Partition Info(GPT)**********" in run.out
    assert "00  00004000  uboot" in run.out and "01  00006000  boot" in run.out


PARAMETER = """FIRMWARE_VER:1.0
CMDLINE: mtdparts=rk29xxnand:0x00002000@0x00004000(uboot),-@0x00008000(rootfs:grow)
uuid:rootfs=614e0000-0000-4b53-8000-1d28000054a9
"""


def test_gpt_wlx_and_ef_after_db(rk, servers, tmp_path):
    """The tool's own GPT writer, a write by partition name, and a full erase."""
    disk = board(tmp_path, capacity=70000)
    server = servers(disk)
    assert "Downloading bootloader succeeded." in rk("db", loader.write(tmp_path), endpoints=[server]).out
    parameter = tmp_path / "parameter.txt"
    parameter.write_text(PARAMETER)
    assert "Writing gpt succeeded." in rk("gpt", parameter, endpoints=[server]).out
    run = rk("ppt", endpoints=[server])
    assert "00  00004000  uboot" in run.out and "01  00008000  rootfs" in run.out
    blob = tmp_path / "uboot.img"
    blob.write_bytes(b"\x5a" * 3000)
    assert rk("wlx", "uboot", blob, endpoints=[server]).rc == 0
    assert disk.read(0x4000, 6)[:3000] == b"\x5a" * 3000
    run = rk("ef", endpoints=[server])
    assert run.rc == 0 and "Erasing flash complete." in run.out
    assert disk.read(0x4000, 6) == bytes(6 * 512)


def test_a_write_beyond_the_storage_fails(rk, servers, tmp_path):
    disk = board(tmp_path, state="loader")
    server = servers(disk)
    image = tmp_path / "image.bin"
    image.write_bytes(b"\xa5" * 8 * 512)
    run = rk("wl", SECTORS - 4, image, endpoints=[server])
    assert run.rc != 0 and "Write LBA failed!" in run.out
    assert disk.path.stat().st_size == SECTORS * 512
    assert b"\xa5" not in disk.path.read_bytes()


def test_rd_resets_the_board_out_of_the_download_mode(rk, servers, tmp_path):
    disk = board(tmp_path, state="loader")
    server = servers(disk)
    run = rk("rd", endpoints=[server])
    assert run.rc == 0 and "Reset Device OK." in run.out
    assert eventually(lambda: disk.mode() is None)
    assert "not found any devices!" in rk("ld", endpoints=[server]).out
    # rd 3 goes back to the BootROM
    disk.enter_loader()
    assert "Reset Device OK." in rk("rd", 3, endpoints=[server]).out
    assert eventually(lambda: disk.state == "maskrom")
    assert ld_line(1, "101", "Maskrom") in rk("ld", endpoints=[server]).out


@attr.s(auto_attribs=True, eq=False)
class PullingBoard(rockusb.DiskBoard):
    """A board whose cable is pulled once ``pull_after`` writes have landed."""

    pull_after: int = 3
    writes: int = 0
    on_pull: object = None

    def write(self, lba: int, data: bytes) -> None:
        super().write(lba, data)
        self.writes += 1
        if self.writes == self.pull_after and self.on_pull:
            self.on_pull()


def test_a_board_unplugged_during_wl_fails_the_tool_without_a_hang(rk, servers, tmp_path):
    disk = PullingBoard(tmp_path / "emmc.img", capacity=SECTORS, state="loader")
    server = servers(disk)
    disk.on_pull = server.unplug
    image = tmp_path / "image.bin"
    data = os.urandom(1 << 20)  # 16 commands of 128 sectors
    image.write_bytes(data)
    run = rk("wl", 0, image, endpoints=[server], timeout=TOOL_TIMEOUT)  # TimeoutExpired would fail the test
    assert run.rc != 0 and "Write LBA failed!" in run.out
    assert "Write LBA from file (100%)" not in run.out
    assert run.seconds < 30
    written = 3 * 128 * 512
    raw = disk.path.read_bytes()
    assert raw[:written] == data[:written] and raw[written:len(data)] == bytes(len(data) - written)
    assert "not found any devices!" in rk("ld", endpoints=[server]).out
    server.replug()
    assert ld_line(1, "101", "Loader") in rk("ld", endpoints=[server]).out


@attr.s(auto_attribs=True, eq=False)
class StuckBoard(rockusb.DiskBoard):
    """A board whose storage stops answering."""

    stuck: threading.Event = attr.ib(factory=threading.Event)

    def read(self, lba: int, count: int) -> bytes:
        self.stuck.wait(10)
        return super().read(lba, count)


def test_a_device_that_stops_answering_fails_the_transfer_in_time(rk, servers, tmp_path):
    """rkdeveloptool asks for no timeout (CMD_TIMEOUT 0); the stub's cap ends the wait."""
    disk = StuckBoard(tmp_path / "emmc.img", capacity=SECTORS, state="loader")
    server = servers(disk)
    try:
        run = rk("rl", 0, 1, tmp_path / "out.bin", endpoints=[server], timeout_ms=1500)
    finally:
        disk.stuck.set()
    assert run.rc != 0 and "Read LBA failed!" in run.out
    assert run.seconds < 10


def test_the_stub_is_only_in_the_tools_environment(rk, servers, stub, tmp_path):
    assert str(stub.parent) not in os.environ.get("LD_LIBRARY_PATH", "")
    assert "TWIN_ROCKUSB" not in os.environ
    env = usbstub.tool_env(["127.0.0.1:1"], stub, base={"LD_LIBRARY_PATH": "/opt/x"})
    assert env["LD_LIBRARY_PATH"] == f"{stub.parent}:/opt/x" and env["TWIN_ROCKUSB"] == "127.0.0.1:1"
    ldd = shutil.which("ldd")
    if ldd:
        out = subprocess.run([ldd, shutil.which("rkdeveloptool")], env=usbstub.tool_env([], stub),
                             capture_output=True, text=True, timeout=30).stdout
        assert f"libusb-1.0.so.0 => {stub}" in out
    rk("ld", endpoints=[servers(board(tmp_path))])
    assert str(stub.parent) not in os.environ.get("LD_LIBRARY_PATH", "")


# ------------------------------------------------------------------ the pieces, without the tool


def _crc_ccitt_bitwise(data: bytes) -> int:
    """crc.cpp's CRC_Calculate loop, transcribed."""
    crc = 0xFFFF
    for ch in data:
        i = 0x80
        while i:
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
            if ch & i:
                crc ^= 0x1021
            i >>= 1
    return crc


def test_crc16_is_rkdeveloptools():
    for data in (b"", b"123456789", os.urandom(777)):
        assert rockusb.crc_ccitt(data) == _crc_ccitt_bitwise(data)
    assert rockusb.crc_ccitt(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value


def test_stub_build_is_cached_by_source(tmp_path):
    lib = usbstub.build(tmp_path)
    first = lib.stat().st_mtime_ns
    assert usbstub.build(tmp_path) == lib and lib.stat().st_mtime_ns == first
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines() if line.split()[-1].startswith("libusb_"))
    assert len(exported) == 17 and "libusb_bulk_transfer" in exported


class _Client:
    """The stub's side of the framed protocol, in Python, to drive a server directly."""

    def __init__(self, server: rockusb.RockusbServer):
        self.sock = socket.create_connection((server.host, server.port), timeout=5)

    def request(self, op: str, ep_or_type=0, request=0, value=0, index=0, length=0, data=b""):
        body = rockusb.REQUEST.pack(ord(op), ep_or_type, request, 0, value, index, length or len(data), 0) + data
        self.sock.sendall(struct.pack("<I", len(body)) + body)
        head = self.sock.recv(12, socket.MSG_WAITALL)
        body_len, result, actual = rockusb.REPLY.unpack(head)
        payload = self.sock.recv(body_len - 8, socket.MSG_WAITALL) if body_len > 8 else b""
        return result, actual, payload

    def send_entry(self, code: int, chunks: list[bytes]) -> list[int]:
        return [self.request("C", 0x40, 0x0C, 0, code, data=c)[0] for c in chunks]


def _entry(chip: str, role: str, size: int) -> bytes:
    return loader.rc4(loader.payload(chip, role, size))


@pytest.mark.parametrize("size", [4094, 4095, 4096, 6144])
def test_vendor_requests_of_every_length_rule_load_the_board(servers, tmp_path, size):
    disk = board(tmp_path)
    client = _Client(servers(disk))
    assert client.request("O")[0] == 0
    chunks471 = rockusb.entry_request(_entry("RK3576", "471", size))
    assert client.send_entry(0x471, chunks471) == [0] * len(chunks471)
    chunks472 = rockusb.entry_request(_entry("RK3576", "472", size))
    assert client.send_entry(0x472, chunks472) == [0] * len(chunks472)
    assert disk.state == "usbplug"


def test_a_corrupt_entry_crc_stalls_the_download(servers, tmp_path):
    disk = board(tmp_path)
    client = _Client(servers(disk))
    client.request("O")
    chunks = rockusb.entry_request(_entry("RK3576", "471", 3000))
    chunks[-1] = chunks[-1][:-1] + bytes([chunks[-1][-1] ^ 0xFF])
    assert client.send_entry(0x471, chunks)[-1] == rockusb.LIBUSB_ERROR_PIPE
    assert disk.state == "maskrom"


def test_query_reports_presence_and_the_usb_identity(servers, tmp_path):
    disk = board(tmp_path, bus=2, ports=(1, 7))
    server = servers(disk)
    result, _, record = _Client(server).request("Q")
    assert result == 0
    present, mode, vid, pid, bcd_usb, _, bus, n = struct.unpack_from("<BBHHHHBB", record)
    assert (present, mode, vid, pid, bcd_usb, bus, record[12:12 + n]) == (1, 1, 0x2207, 0x350E, 0x0200, 2, b"\x01\x07")
    disk.enter_loader()
    assert struct.unpack_from("<H", _Client(server).request("Q")[2], 6)[0] == 0x0201
    server.unplug()
    assert _Client(server).request("Q")[2][0] == 0
    assert _Client(server).request("O")[0] == rockusb.LIBUSB_ERROR_NO_DEVICE


@pytest.mark.parametrize("chip", ["RK3576", "RK3588"])
def test_the_committed_twin_loaders_are_what_the_builder_writes(chip):
    """env/twin-rkdeveloptool.yaml names images/loader/; the files must stay the builder's."""
    committed = REPO / "images" / "loader" / f"{chip.lower()}_spl_loader_twin.bin"
    assert committed.read_bytes() == loader.build(chip)
