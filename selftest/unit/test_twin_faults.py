"""The bench's faults without QEMU: each fault's argument is checked when it is set (by the
board, its HTTP API and ``hil twin fault``), and a guest fault cleared while the guest cannot
hear it is cleared at the guest's next start."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request

import pytest

from hil import cli
from hil.twin.api import BenchHTTPServer
from hil.twin.board import FAULTS, BoardError, FaultArgumentError, VirtualBoard, check_fault_value


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
])
def test_arguments_of_the_right_kind_are_taken(board, name, value, stored):
    board.set_fault(name, value)
    assert board.faults == {name: stored}


def test_every_fault_says_what_it_takes():
    for name in FAULTS:
        assert check_fault_value(name, None) == "1"
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
