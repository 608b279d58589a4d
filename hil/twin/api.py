"""The bench's HTTP front: a PDU, a maskrom button, the rockusb flash service and faults.

Paths (board N counts from 1):
  GET  /outlet/N                 -> "1" or "0"          (labgrid simplerest/rest get)
  GET  /outlet/N/V               switch outlet to V      (labgrid simplerest set; the pdu-hang fault
                                 holds the request unanswered, as a hung PDU does)
  PUT  /outlet/N   body 1|0      switch outlet           (labgrid rest set)
  GET  /maskrom/N, PUT /maskrom/N body 1|0               (labgrid HttpDigitalOutputDriver)
  GET  /usb/N                    rockusb device: present, mode (Maskrom/Loader), vid, pid
  POST /usb/N/db                 download the loader (needed in maskrom before writing)
  PUT  /usb/N/image[?wipe_userdata=1]   write an image (wl 0); only in loader mode
  POST /usb/N/reset              leave the loader and boot (rd)
  GET  /fault/N, PUT /fault/N/NAME body VALUE, DELETE /fault/N[/NAME]
                                 VALUE of the kind the fault takes (hil.twin.board.FAULT_ARGUMENTS),
                                 else 400 saying what it takes; an unknown fault is 409
  GET  /boards, /board/N, /hostkey, /health
Errors answer 4xx with a one-line text that names the cause and what to do.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hil.twin.board import BoardError, VirtualBoard
from hil.twin.firmware import FirmwareError

log = logging.getLogger("hil.twin.api")
MAX_IMAGE = 512 * 1024 * 1024
PDU_HANG_SECONDS = 600.0  # how long the pdu-hang fault holds a request (bounded: the bench must still stop)


class _Handler(BaseHTTPRequestHandler):
    server: BenchHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)

    def _reply(self, code: int, body, ctype: str = "text/plain") -> None:
        if not isinstance(body, (bytes, str)):
            body, ctype = json.dumps(body, indent=1), "application/json"
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _board(self, part: str) -> VirtualBoard:
        try:
            return self.server.boards[int(part)]
        except (ValueError, KeyError):
            raise LookupError(f"no board {part!r} on this bench (boards: {', '.join(map(str, self.server.boards))})") from None

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            self._route(method, parts, query)
        except LookupError as e:
            self._reply(404, f"{e.args[0]}\n")
        except (BoardError, FirmwareError) as e:
            self._reply(409 if isinstance(e, BoardError) else 400, f"{e}\n")
        except ValueError as e:
            self._reply(400, f"{e}\n")

    def _route(self, method: str, parts: list[str], query: dict) -> None:
        srv = self.server
        match method, parts:
            case "GET", ["health"]:
                self._reply(200, "ok\n")
            case "GET", ["hostkey"]:
                self._reply(200, srv.host_key + "\n")
            case "GET", ["boards"]:
                self._reply(200, [b.status() for b in srv.boards.values()])
            case "GET", ["board", n]:
                self._reply(200, self._board(n).status())
            case "GET", ["outlet", n]:
                self._reply(200, "1" if self._board(n).power else "0")
            case ("GET", ["outlet", n, v]) | ("PUT", ["outlet", n, v]):
                self._set_power(self._board(n), v)
            case "PUT", ["outlet", n]:
                self._set_power(self._board(n), self._body().decode().strip())
            case "GET", ["maskrom", n]:
                self._reply(200, "1" if self._board(n).maskrom_button else "0")
            case "PUT", ["maskrom", n]:
                board = self._board(n)
                board.maskrom_button = _bit(self._body().decode().strip())
                self._reply(200, "1" if board.maskrom_button else "0")
            case "GET", ["usb", n]:
                self._reply(200, self._board(n).usb())
            case "POST", ["usb", n, "db"]:
                self._board(n).download_boot()
                self._reply(200, "Downloading bootloader succeeded.\n")
            case "PUT", ["usb", n, "image"]:
                self._write_image(self._board(n), query)
            case "POST", ["usb", n, "reset"]:
                self._board(n).reset_device()
                self._reply(200, "Reset Device OK.\n")
            case "GET", ["fault", n]:
                self._reply(200, self._board(n).faults)
            case "PUT", ["fault", n, name]:
                # the board checks the value (400 with what the fault takes when it is of the wrong kind)
                self._board(n).set_fault(name, self._body().decode(errors="replace").strip() or None)
                self._reply(200, self._board(n).faults)
            case "DELETE", ["fault", n]:
                self._board(n).clear_fault()
                self._reply(200, {})
            case "DELETE", ["fault", n, name]:
                self._board(n).clear_fault(name)
                self._reply(200, self._board(n).faults)
            case _:
                raise LookupError(f"no such endpoint: {method} /{'/'.join(parts)}")

    def _set_power(self, board: VirtualBoard, value: str) -> None:
        if "pdu-hang" in board.faults:  # a PDU that took the request and hangs: no answer, power unchanged
            self.server.hung.wait(PDU_HANG_SECONDS)
            self.close_connection = True
            return
        board.set_power(_bit(value))
        self._reply(200, "1" if board.power else "0")

    def _write_image(self, board: VirtualBoard, query: dict) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_IMAGE:
            raise ValueError(f"image upload needs a Content-Length between 1 and {MAX_IMAGE} bytes")
        wipe = query.get("wipe_userdata", ["0"])[0] in ("1", "true", "yes")
        with tempfile.NamedTemporaryFile(dir=board.workdir, prefix="upload-", delete=False) as tmp:
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ValueError("upload ended early")
                tmp.write(chunk)
                remaining -= len(chunk)
        try:
            manifest = board.write_image(Path(tmp.name), wipe_userdata=wipe)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
        self._reply(200, {"image": manifest["name"], "wiped_userdata": wipe})

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")


def _bit(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {value!r}")
    return value == "1"


class BenchHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], boards: dict[int, VirtualBoard], host_key: str) -> None:
        super().__init__(address, _Handler)
        self.boards, self.host_key = boards, host_key
        self.hung = threading.Event()  # set at shutdown: releases requests held by the pdu-hang fault

    def shutdown(self) -> None:
        self.hung.set()
        super().shutdown()

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        return thread
