"""The bench's faults without QEMU: each fault's argument is checked when it is set (by the
board, its HTTP API and ``hil twin fault``), a guest fault cleared while the guest cannot
hear it is cleared at the guest's next start, the boot-fail fault's seeded draw, and what QEMU
is started with for a failing boot and for RAM that survives a warm reset (ramoops)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hil import cli
from hil.twin.api import BenchHTTPServer
from hil.twin import build
from hil.twin.board import (BOOT_FAIL_STAGES, FAULTS, BoardError, BootFail, FaultArgumentError, VirtualBoard,
                            check_fault_value)

BOOT_FAULT = Path(__file__).resolve().parents[2] / "hil/twin/guest/rootfs/usr/libexec/twin/boot-fault"


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard(1, tmp_path / "board-1", host="127.0.0.1", console_port=0, ssh_port=0,
                     uboot=tmp_path / "u-boot.bin")
    yield b
    b.close()


@pytest.fixture
def api(board):
    server = BenchHTTPServer(("127.0.0.1", 0), {1: board}, "ssh-ed25519 AAAA")
    server.serve_in_thread()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(url: str, method: str, body: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Guest:
    """The guest agent's end of the control channel: the lines the board sent it."""

    def __init__(self, board: VirtualBoard) -> None:
        self.board = board
        ours, self.sock = socket.socketpair()
        board._ctl = ours
        self.sock.settimeout(5)

    def lines(self) -> list[str]:
        self.board._ctl.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := self.sock.recv(4096):
            data += chunk
        return data.decode().splitlines()


def power_on(board: VirtualBoard) -> Guest:
    """What ``set_power(True)`` does up to the guest agent's "hello", without QEMU."""
    board._generation += 1
    board.power, board.mode = True, "booting"
    guest = Guest(board)
    board._on_guest_message(board._generation, "hello")
    return guest


def power_off(board: VirtualBoard) -> None:
    board.set_power(False)
    assert board.mode == "off" and board._ctl is None


# --- arguments --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,value", [
    ("spontaneous-reboot", "abc"), ("spontaneous-reboot", "0"), ("spontaneous-reboot", "-5"),
    ("spontaneous-reboot", "inf"), ("spontaneous-reboot", "nan"), ("spontaneous-reboot", "1e3"),
    ("serial-garbage", "lots"), ("serial-garbage", "150"), ("decode-slow", "fast"), ("decode-slow", "-1"),
    ("decode-slow", "30 %"), ("decode-slow", "5\nclear"), ("ssh-down", "0"), ("userdata-full", "yes"),
    ("boot-hang", "2"), ("rknn-slow", "96"), ("rknn-slow", "yolov5s_rk3576:fast"), ("rknn-slow", "a b:5"),
    ("rknn-slow", ":5;reboot"), ("rknn-answer", "two models"), ("rknn-answer", "m;reboot"),
    ("kernel-panic", "2"), ("kernel-panic", "reboot"), ("boot-fail", "1"), ("boot-fail", "50"),
    ("boot-fail", "0:init"), ("boot-fail", "101:init"), ("boot-fail", "-5:init"), ("boot-fail", "nan:init"),
    ("boot-fail", "1e2:init"), ("boot-fail", "50:login"), ("boot-fail", "50:INIT"), ("boot-fail", "50:"),
    ("boot-fail", "50:init:x"), ("boot-fail", "50:init:1.5"), ("boot-fail", "50:init:1:2"),
    ("boot-fail", "init:50"), ("boot-fail", "50:init;reboot"), ("boot-fail", "50:init:-3"),
])
def test_a_fault_argument_of_the_wrong_kind_is_refused_and_not_stored(board, name, value):
    with pytest.raises(FaultArgumentError, match=f"fault {name} takes") as e:
        board.set_fault(name, value)
    assert "\n" not in str(e.value)
    assert board.faults == {}


@pytest.mark.parametrize("name,value,stored", [
    ("spontaneous-reboot", "2", "2"), ("spontaneous-reboot", "0.5", "0.5"), ("spontaneous-reboot", None, "1"),
    ("serial-garbage", "100", "100"), ("decode-slow", "0", "0"), ("decode-slow", "7", "7"),
    ("ssh-down", "1", "1"), ("boot-hang", None, "1"), ("thermal-throttle", " 1 ", "1"),
    ("rknn-slow", "10", "10"), ("rknn-slow", "yolov5s_rk3576:15", "yolov5s_rk3576:15"),
    ("rknn-answer", None, "1"), ("rknn-answer", "mobilenetv2-12_rk3576", "mobilenetv2-12_rk3576"),
    ("boot-fail", "4:kernel:7", "4:kernel:7"), ("boot-fail", "100:uboot", "100:uboot"),
    ("boot-fail", " 0.5:npu:3 ", "0.5:npu:3"), ("boot-fail", "25:network:0", "25:network:0"),
])
def test_arguments_of_the_right_kind_are_taken(board, name, value, stored):
    board.set_fault(name, value)
    assert board.faults == {name: stored}


def test_every_fault_says_what_it_takes():
    for name in FAULTS - {"boot-fail"}:
        assert check_fault_value(name, None) == "1"
    with pytest.raises(FaultArgumentError, match="boot-fail takes PCT:STAGE or PCT:STAGE:SEED"):
        check_fault_value("boot-fail", None)  # no default: how many boots fail, and where, is the point
    with pytest.raises(BoardError, match="unknown fault 'meteor-strike'"):
        check_fault_value("meteor-strike", "1")


def test_the_api_refuses_a_wrong_argument_with_what_the_fault_takes(api, board):
    status, body = call(f"{api}/fault/1/spontaneous-reboot", "PUT", b"abc")
    assert status == 400, body
    assert "spontaneous-reboot takes" in body and "seconds" in body and "'abc'" in body
    assert body.count("\n") == 1
    status, body = call(f"{api}/fault/1/decode-slow", "PUT", b"\xff\xfe")
    assert status == 400 and "decode-slow takes" in body and "percent" in body
    assert call(f"{api}/fault/1", "GET") == (200, "{}")
    assert board.faults == {}  # nothing stored for a power-on to trip on
    status, body = call(f"{api}/fault/1/spontaneous-reboot", "PUT", b"2")
    assert status == 200 and json.loads(body) == {"spontaneous-reboot": "2"}
    status, body = call(f"{api}/fault/1/meteor-strike", "PUT", b"1")
    assert status == 409 and "unknown fault" in body


def test_the_cli_refuses_a_wrong_argument_before_asking_any_bench(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIL_BENCH_DIR", str(tmp_path / "no-bench"))
    assert cli.main(["twin", "fault", "1", "spontaneous-reboot", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: fault spontaneous-reboot takes") and "seconds" in err and "'abc'" in err
    assert err.count("\n") == 1
    assert cli.main(["twin", "fault", "1", "ssh-down", "0"]) == 2
    assert "ssh-down takes no argument" in capsys.readouterr().err
    assert cli.main(["twin", "fault", "1", "clear", "meteor-strike"]) == 2
    assert "no fault" in capsys.readouterr().err
    # a right one goes on to the bench (none is running here)
    assert cli.main(["twin", "fault", "1", "spontaneous-reboot", "2"]) == 3
    assert "no bench is running" in capsys.readouterr().err


def test_the_cli_sets_a_checked_fault_on_a_running_bench(tmp_path, monkeypatch, capsys, api, board):
    state = tmp_path / "bench"
    state.mkdir()
    (state / "state.json").write_text(json.dumps({"url": api, "pid": os.getpid()}))
    monkeypatch.setenv("HIL_BENCH_DIR", str(state))
    assert cli.main(["twin", "fault", "1", "decode-slow", "30"]) == 0
    assert board.faults == {"decode-slow": "30"}
    assert cli.main(["twin", "fault", "1", "decode-slow", "thirty"]) == 2
    assert board.faults == {"decode-slow": "30"}
    assert cli.main(["twin", "fault", "1", "clear", "decode-slow"]) == 0
    assert board.faults == {}


# --- clearing ---------------------------------------------------------------------------------

def test_userdata_full_cleared_while_the_board_is_off_is_cleared_at_the_next_power_on(board):
    guest = power_on(board)
    board.set_fault("userdata-full")
    assert guest.lines() == ["fault userdata-full 1"]
    power_off(board)
    board.clear_fault("userdata-full")  # nobody to tell now: the fill file stays on the eMMC
    assert board.faults == {}
    guest = power_on(board)
    assert guest.lines() == ["clear userdata-full"]  # the guest removes it as it starts
    power_off(board)
    assert power_on(board).lines() == []  # told once


def test_clearing_every_fault_while_off_clears_userdata_full_too(board):
    guest = power_on(board)
    board.set_fault("userdata-full")
    board.set_fault("decode-slow", "30")
    guest.lines()
    power_off(board)
    board.clear_fault()
    assert set(power_on(board).lines()) == {"clear userdata-full", "clear decode-slow"}


def test_a_fault_set_again_after_a_clear_while_off_stays_on(board):
    power_on(board).lines()
    board.set_fault("userdata-full")
    power_off(board)
    board.clear_fault("userdata-full")
    board.set_fault("userdata-full")
    assert power_on(board).lines() == ["fault userdata-full 1"]


def test_a_clear_while_the_guest_boots_is_repeated_at_its_hello(board):
    board._generation += 1
    board.power, board.mode = True, "booting"
    guest = Guest(board)
    board.faults["userdata-full"] = "1"
    board.clear_fault("userdata-full")  # the agent may not be reading yet
    board._on_guest_message(board._generation, "hello")
    assert guest.lines() == ["clear userdata-full", "clear userdata-full"]


def test_a_clear_of_a_running_guest_is_sent_once(board):
    guest = power_on(board)
    board.set_fault("oom-kill")
    board.clear_fault("oom-kill")
    assert guest.lines() == ["fault oom-kill 1", "clear oom-kill"]
    power_off(board)
    assert power_on(board).lines() == []


def test_clearing_an_unknown_fault_is_an_error(board):
    with pytest.raises(BoardError, match="unknown fault 'meteor-strike'"):
        board.clear_fault("meteor-strike")


# --- boot-fail: the value, the seeded draw, the boot QEMU is given -------------------------------------

def test_a_wrong_boot_fail_value_says_which_part_is_wrong(board):
    for value, why in [("50", "needs PCT:STAGE"), ("0:init", "PCT '0' is not a number above 0"),
                       ("50:login", "STAGE 'login' is none of uboot, kernel, init, network, npu"),
                       ("50:init:seven", "SEED 'seven' is not a whole number")]:
        with pytest.raises(FaultArgumentError, match=why) as e:
            board.set_fault("boot-fail", value)
        assert str(e.value).startswith("fault boot-fail takes PCT:STAGE or PCT:STAGE:SEED")
        assert f"{value!r}" in str(e.value)
    assert board.faults == {} and board.status()["boot_failures"] == []


def test_kernel_panic_takes_reset_and_tells_the_guest(board):
    guest = power_on(board)
    board.set_fault("kernel-panic", "reset")
    board.set_fault("kernel-panic")
    assert guest.lines() == ["fault kernel-panic reset", "fault kernel-panic 1"]
    assert board.faults == {}  # a panic happens once


def test_the_same_seed_and_percent_fail_the_same_boots():
    plan = BootFail.plan("30:init:7", 200)
    assert plan == BootFail.plan("30:init:7", 200) == BootFail.plan("30:npu:7", 200)  # the stage draws nothing
    assert plan[:5] == BootFail.plan("30:init:7", 20)[:5]  # a longer run only adds boots at its end
    assert plan != BootFail.plan("30:init:8", 200)
    assert BootFail.plan("30:init", 200) == BootFail.plan("30:init:1", 200)  # seed 1 when left out
    assert BootFail.plan("100:uboot", 7) == [1, 2, 3, 4, 5, 6, 7]
    # the share is the percent's, within what chance gives (4 standard deviations)
    for pct in (5, 30, 80):
        n = len(BootFail.plan(f"{pct}:kernel:3", 4000))
        sd = (4000 * pct / 100 * (1 - pct / 100)) ** 0.5
        assert abs(n - 40 * pct) < 4 * sd, (pct, n)


def test_the_board_draws_once_per_start_and_lists_the_boots_it_failed(board):
    board.set_fault("boot-fail", "40:network:11")
    stages = [board._draw_boot_fail() for _ in range(30)]
    failed = [n for n, stage in enumerate(stages, 1) if stage]
    assert set(stages) == {None, "network"} and failed == BootFail.plan("40:network:11", 30)
    status = board.status()
    assert status["boot_failures"] == [{"boot": n, "stage": "network"} for n in failed]
    assert status["boot_fail_boots"] == 30 and status["faults"] == {"boot-fail": "40:network:11"}
    json.dumps(status)
    # set again: a fresh draw from the first boot on, the same boots fail
    board.set_fault("boot-fail", "40:network:11")
    assert board.status()["boot_failures"] == []
    assert [n for n in range(1, 31) if board._draw_boot_fail()] == failed
    # cleared: no boot fails any more; what it did stays readable
    board.clear_fault("boot-fail")
    assert [board._draw_boot_fail() for _ in range(20)] == [None] * 20
    assert board.status()["boot_failures"] == [{"boot": n, "stage": "network"} for n in failed]
    board.set_fault("boot-fail", "100:kernel")
    board.clear_fault()  # clearing all clears it too
    assert board._draw_boot_fail() is None


@pytest.fixture
def installed(board):
    board.emmc.mkdir(parents=True, exist_ok=True)
    (board.emmc / "cmdline").write_text(build.CMDLINE + "\n")
    return board


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_each_stage_boots_qemu_so_that_it_stops_there(installed):
    board = installed
    plain = board._qemu_args()
    assert _arg(plain, "-kernel") == str(board.emmc / "Image") and "twin.bootfail" not in _arg(plain, "-append")
    for stage in BOOT_FAIL_STAGES:
        args = board._qemu_args(stage)
        cmdline = _arg(args, "-append").split()
        if stage == "uboot":  # U-Boot loads a kernel it refuses; nothing in it looks like a kernel
            kernel = Path(_arg(args, "-kernel"))
            assert kernel != board.emmc / "Image" and kernel.read_bytes() == bytes(64 * 1024)
            assert not any(w.startswith("twin.bootfail") for w in cmdline)
        else:
            assert _arg(args, "-kernel") == str(board.emmc / "Image") and f"twin.bootfail={stage}" in cmdline
        rdinit = [w for w in cmdline if w.startswith("rdinit=")][-1]  # the kernel takes the last one
        assert rdinit == ("rdinit=/nonexistent" if stage == "kernel" else "rdinit=/init")


def test_guest_ram_is_a_file_the_kernel_sees_2_gib_of_with_ramoops_above(installed):
    board = installed
    args = board._qemu_args()
    assert _arg(args, "-m") == "2304" and _arg(args, "-M") == "virt,memory-backend=dram"
    assert _arg(args, "-object") == f"memory-backend-file,id=dram,size=2304M,mem-path={board.ram},share=on"
    assert board.ram.parent == board.workdir
    cmdline = _arg(args, "-append").split()
    assert "mem=2048M" in cmdline and "panic=0" in cmdline
    ramoops = {"ramoops.mem_address=0xc0000000", "ramoops.mem_size=0x100000", "ramoops.record_size=0x20000"}
    assert ramoops <= set(cmdline)
    # U-Boot keeps initrd and device tree below the kernel's top, where ramoops starts
    env = b"x\0fdt_high=0xffffffff\0initrd_high=0xffffffff\0fdt_addr=0x40000000\0\0"
    assert build._cap_uboot_placement(env) == b"x\0fdt_high=0xc0000000\0initrd_high=0xc0000000\0fdt_addr=0x40000000\0\0"
    with pytest.raises(build.BuildError, match="initrd_high"):
        build._cap_uboot_placement(b"x\0fdt_high=0xffffffff\0\0")
    mods = build.GUEST_MODULES
    assert mods.index("kernel/lib/reed_solomon/reed_solomon.ko") < mods.index("kernel/fs/pstore/ramoops.ko")


def test_guest_ram_survives_a_reset_and_goes_with_the_power(board):
    power_on(board)
    board.ram.parent.mkdir(parents=True, exist_ok=True)
    board.ram.write_bytes(b"ramoops")
    board._stop_qemu()  # what a reset or a spontaneous reboot does before QEMU starts again
    assert board.ram.read_bytes() == b"ramoops"
    power_off(board)
    assert not board.ram.exists()
    board.ram.write_bytes(b"left by a bench that died")
    board.maskrom_button = True
    board.set_power(True)  # a cold boot (here into maskrom, no QEMU) starts with fresh RAM
    assert board.mode == "maskrom" and not board.ram.exists()


def test_the_api_takes_boot_fail_like_the_other_faults(api, board):
    status, body = call(f"{api}/fault/1/boot-fail", "PUT", b"4:kernel:7")
    assert status == 200 and json.loads(body) == {"boot-fail": "4:kernel:7"}
    status, body = call(f"{api}/board/1", "GET")
    assert json.loads(body)["boot_failures"] == [] and json.loads(body)["boot_fail_boots"] == 0
    status, body = call(f"{api}/fault/1/boot-fail", "PUT", b"4:bootrom:7")
    assert status == 400 and "STAGE 'bootrom' is none of" in body and body.count("\n") == 1
    assert board.faults == {"boot-fail": "4:kernel:7"}  # the wrong one changed nothing
    assert call(f"{api}/fault/1/kernel-panic", "PUT", b"reset")[0] == 200
    status, body = call(f"{api}/fault/1/boot-fail", "DELETE")
    assert status == 200 and json.loads(body) == {}


def test_the_cli_checks_boot_fail(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIL_BENCH_DIR", str(tmp_path / "no-bench"))
    assert cli.main(["twin", "fault", "1", "boot-fail", "50:login"]) == 2
    assert "STAGE 'login'" in capsys.readouterr().err
    assert cli.main(["twin", "fault", "1", "boot-fail", "50:login:x"]) == 2
    assert cli.main(["twin", "fault", "1", "boot-fail", "50:init:3"]) == 3  # right: on to the bench (none here)


@pytest.mark.skipif(not shutil.which("busybox"), reason="needs Debian's busybox-static to run the guest script")
@pytest.mark.parametrize("stage,reached", [
    (None, {"login", "network", "npu"}), ("init", set()), ("network", {"login"}), ("npu", {"login", "network"}),
])
def test_the_guest_holds_back_what_comes_after_the_stage(tmp_path, stage, reached):
    state = tmp_path / "bootfail"
    if stage:
        state.write_text(stage + "\n")
    env = {"PATH": os.environ["PATH"], "TWIN_BOOTFAIL_STATE": str(state)}
    got = {what for what in ("login", "network", "npu")
           if subprocess.run(["busybox", "sh", str(BOOT_FAULT), "reaches", what], env=env, timeout=10).returncode == 0}
    assert got == reached
