"""SSH to a board in Python (paramiko): commands, running programs, file transfer and deploy.

Replaces labgrid's SSHDriver for the boards, which drives the OpenSSH binaries with host-key
checking switched off, runs commands without a timeout unless given one, copies with
scp/SFTP (the boards' dropbear has no sftp-server) and cannot keep a program running while
a test talks to it. This driver pins the board's host key, gives every command a timeout,
stops what a timed-out command left running, names signals, copies over ``cat`` and
deploys only what changed (:mod:`hil.lab.deploy`).

Example environment entry (a real board; ``known_hosts`` is resolved next to this file)::

    resources:
      NetworkService: {address: 192.168.50.21, username: root, password: rk3576}
    drivers:
      ParamikoSSHDriver:
        known_hosts: known_hosts/board-07
        connection_timeout: 60

and for the twin, whose host key never changes::

      ParamikoSSHDriver:
        host_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...'
"""

from __future__ import annotations

import base64
import binascii
import codecs
import os
import posixpath
import re
import secrets
import select
import shlex
import signal
import socket
import stat
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path

import attr
import paramiko
from labgrid.driver import Driver
from labgrid.driver.commandmixin import CommandMixin
from labgrid.driver.exception import ExecutionError
from labgrid.factory import target_factory
from labgrid.protocol import CommandProtocol, FileTransferProtocol
from labgrid.step import step
from paramiko.common import MSG_CHANNEL_REQUEST

from hil.lab import deploy as deploymod
from hil.lab.deploy import DeployResult
from hil.lab.process import ProcessExited, ProcessProtocol, ProcessTimeout, RemoteProcess, describe_exit

CHUNK = 256 * 1024
KILL_TIMEOUT = 10.0
RETRY_PAUSE = 0.25
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@attr.s(eq=False)
class SSHError(ExecutionError):
    """An ExecutionError that prints as its message (labgrid's prints the attrs tuple)."""

    def __str__(self) -> str:
        return self.msg


class HostKeyMismatch(SSHError):
    """The board offered another host key than the pinned one; never retried."""


# --- host keys (pure) ----------------------------------------------------------------------
def parse_host_key(line: str) -> paramiko.PKey:
    """A public key from an OpenSSH line ``ssh-ed25519 AAAA... [comment]``."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError(f"host_key must look like 'ssh-ed25519 AAAA...', got {line!r}")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (binascii.Error, paramiko.SSHException, paramiko.pkey.UnknownKeyType, ValueError) as e:
        raise ValueError(f"host_key {parts[0]} {parts[1][:16]}... is not a valid public key: {e}") from None


def fingerprint(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...`` as ``ssh-keygen -lf`` shows it."""
    return f"{key.get_name()} {key.fingerprint}"


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH files a host key under: ``[addr]:port`` unless the port is 22."""
    return address if port == 22 else f"[{address}]:{port}"


def host_key_algorithms(keys: list[paramiko.PKey]) -> list[str]:
    """Host key algorithms to offer so the server signs with a key we can check."""
    algorithms = []
    for key in keys:
        names = ["rsa-sha2-512", "rsa-sha2-256"] if key.get_name() == "ssh-rsa" else [key.get_name()]
        algorithms += [n for n in names if n not in algorithms]
    return algorithms


def check_host_key(offered: paramiko.PKey, expected: list[paramiko.PKey], who: str, source: str) -> None:
    if any(offered.get_name() == k.get_name() and offered.asbytes() == k.asbytes() for k in expected):
        return
    raise HostKeyMismatch(
        f"host key mismatch for {who}: expected {', '.join(fingerprint(k) for k in expected)} (from {source}), "
        f"offered {fingerprint(offered)}; if the board was reinstalled, check and update {source}")


# --- command lines (pure) ------------------------------------------------------------------
def job_command(command: str, token: str, *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> str:
    """The line sent to the board: ``command`` with the environment and directory set up.

    HIL_JOB marks every process the command starts, so a timed-out or closed command can be
    stopped with all its children: closing the channel does not stop them (dropbear sends no
    signal to a command without a terminal). dropbear ignores ``env`` requests, hence export;
    the command then runs in a shell started after the export (``exec sh -c``), because
    ``/proc/PID/environ``, which ``kill_job_command`` reads, shows only what a process was
    started with: a loop run by the exporting shell itself would never be found.
    """
    exports = [f"HIL_JOB={token}"]
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        exports.append(f"{name}={shlex.quote(str(value))}")
    line = "export " + " ".join(exports) + "; "
    if cwd is not None:
        line += f"cd -- {shlex.quote(cwd)} || exit; "
    return line + "exec sh -c " + shlex.quote(command)


def kill_job_command(token: str) -> str:
    """Kill every process whose environment carries ``HIL_JOB=<token>`` (grep -z: entries end
    in NUL). All are stopped before any is killed, so a shell cannot start its next command
    in between; rescanned until none is left (killed ones have an empty environ)."""
    pattern = shlex.quote(f"HIL_JOB={token}")
    return (f"n=0; while [ $n -lt 5 ]; do pids=; "
            f"for f in $(grep -l -s -z -x -F {pattern} /proc/[0-9]*/environ); do f=${{f#/proc/}}; "
            f"pids=\"$pids ${{f%/environ}}\"; done; [ -z \"$pids\" ] && break; "
            f"kill -STOP $pids; kill -KILL $pids; n=$((n+1)); done 2>/dev/null; true")


def put_command(remotepath: str, name: str, mode: int) -> str:
    """``cat`` stdin into ``remotepath`` (or into ``remotepath/name`` when it is a directory)."""
    return (f"d={shlex.quote(remotepath or '.')}; [ -d \"$d\" ] && d=\"$d\"/{shlex.quote(name)}; "
            f"{{ cat > \"$d{deploymod.TMP_SUFFIX}\" && chmod {mode:o} -- \"$d{deploymod.TMP_SUFFIX}\" "
            f"&& mv -f -- \"$d{deploymod.TMP_SUFFIX}\" \"$d\"; }} "
            f"|| {{ rc=$?; rm -f -- \"$d{deploymod.TMP_SUFFIX}\"; exit $rc; }}")


def describe_status(status: int) -> str:
    if status == -1:
        return "no exit status (the SSH server reported none)"
    return describe_exit(status)


def split_lines(data: bytes, codec: str, errors: str) -> list[str]:
    lines = data.decode(codec, errors).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


# --- paramiko: learn how a command died -----------------------------------------------------
def channel_request(chan: paramiko.Channel, m: paramiko.Message) -> None:
    """Note the signal of an ``exit-signal`` request (paramiko drops it), then let paramiko
    handle the request as usual."""
    start = m.packet.tell()
    try:
        if m.get_text() == "exit-signal":
            m.get_boolean()
            chan.hil_exit_signal = m.get_text()
    except Exception:  # a malformed request is paramiko's to reject
        pass
    m.packet.seek(start)
    paramiko.Channel._handle_request(chan, m)


class _Transport(paramiko.Transport):
    _channel_handler_table = {**paramiko.Transport._channel_handler_table, MSG_CHANNEL_REQUEST: channel_request}


def transport_dead(transport: paramiko.Transport) -> bool:
    """True once the connection is gone. paramiko closes the channels before it clears
    ``active``, but it records the cause first, so look at both."""
    return not transport.is_active() or transport.saved_exception is not None


def exit_code(chan: paramiko.Channel) -> int:
    """The exit status, or 128 + N when the server said the command died of signal N (as a shell would)."""
    status = chan.exit_status
    name = getattr(chan, "hil_exit_signal", None)
    if status == -1 and name:
        try:
            return 128 + signal.Signals["SIG" + name.removeprefix("SIG")]
        except KeyError:
            pass
    return status


def _tcp_keepalive(sock: socket.socket, interval: int) -> None:
    """Let the kernel drop a connection whose board stopped answering (cable pulled, board
    hung): paramiko's keepalive only sends, it never notices a missing answer."""
    if interval <= 0:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", interval), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", 3),
                        ("TCP_USER_TIMEOUT", 4 * interval * 1000)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


# --- the driver ----------------------------------------------------------------------------
@target_factory.reg_driver
@attr.s(eq=False)
class ParamikoSSHDriver(CommandMixin, Driver, CommandProtocol, FileTransferProtocol, ProcessProtocol):
    """Commands, programs and files on a board over one SSH connection with a pinned host key.

    Args:
        host_key (str): the board's public host key, ``ssh-ed25519 AAAA...`` (the twin's is fixed)
        known_hosts (str): a known_hosts file holding the board's key (real boards; relative
            paths are resolved against the environment file). Exactly one of the two.
        keyfile (str): private key to log in with; the NetworkService password is tried after it
        connection_timeout (float): keep retrying to connect this long (sshd starts after the shell)
        command_timeout (float): timeout of commands called without one, and of a transfer
            that makes no progress
        keepalive (int): seconds between keepalive packets; a board silent for about four
            times this long counts as lost (0: never)
        probe_after (float): seconds a running program may stay silent before the driver
            asks the board whether it is still there (opens a channel); a network stack that
            keeps the TCP connection alive for a dead board (a panic behind QEMU's port
            forward, a hung kernel) is found this way (0: never)
        probe_timeout (float): seconds the board has to answer that probe
    """

    bindings = {"networkservice": "NetworkService"}
    priorities = {CommandProtocol: 10, FileTransferProtocol: 10, ProcessProtocol: 10}

    host_key = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    known_hosts = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    keyfile = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    connection_timeout = attr.ib(default=30.0, converter=float)
    command_timeout = attr.ib(default=60.0, converter=float)
    keepalive = attr.ib(default=15, converter=int)
    probe_after = attr.ib(default=30.0, converter=float)
    probe_timeout = attr.ib(default=10.0, converter=float)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if (self.host_key is None) == (self.known_hosts is None):
            raise ValueError("ParamikoSSHDriver needs exactly one of host_key (pinned key) and known_hosts (file)")
        if self.host_key is not None:
            parse_host_key(self.host_key)  # a malformed pin fails when the environment loads
        self._transport: paramiko.Transport | None = None
        self._lost: str | None = None
        self._processes: weakref.WeakSet[SSHProcess] = weakref.WeakSet()

    # --- connection ----------------------------------------------------------------------
    @property
    def who(self) -> str:
        return f"{self.networkservice.username}@{self.networkservice.address}:{self.networkservice.port}"

    def _resolve(self, path: str) -> str:
        if self.target.env:
            return self.target.env.config.resolve_path(path)
        return os.path.expanduser(path)

    def _expected_keys(self) -> tuple[list[paramiko.PKey], str]:
        if self.host_key is not None:
            return [parse_host_key(self.host_key)], "host_key"
        path = self._resolve(self.known_hosts)
        keys = paramiko.HostKeys()
        try:
            keys.load(path)
        except OSError as e:
            raise SSHError(f"cannot read known_hosts file {path}: {e.strerror or e}") from None
        name = known_hosts_name(self.networkservice.address, self.networkservice.port)
        entry = keys.lookup(name)
        if not entry:
            raise SSHError(f"{path} has no host key for {name}; add the board's key after checking it "
                           f"(ssh-keyscan -p {self.networkservice.port} {self.networkservice.address})")
        return list(entry.values()), path

    def _endpoint(self) -> tuple[str, int]:
        """Where to connect: the board, or a forward through the exporter when it must proxy."""
        ns = self.networkservice
        if "%" in ns.address:
            raise SSHError(f"{ns.address}: link-local addresses with an interface are not supported; "
                           f"give the board a routable address")
        extra = getattr(ns, "extra", None) or {}
        from labgrid.util.proxy import proxymanager

        proxy = extra.get("proxy") if extra.get("proxy_required") else getattr(proxymanager, "_force_proxy", None)
        if proxy:
            from labgrid.util.ssh import sshmanager

            return "localhost", sshmanager.request_forward(proxy, ns.address, ns.port)
        return ns.address, ns.port

    def on_activate(self):
        self._connect()

    def on_deactivate(self):
        for proc in list(self._processes):
            proc.close()
        transport, self._transport, self._lost = self._transport, None, None
        if transport is not None:
            transport.close()

    def _connect(self) -> None:
        expected, source = self._expected_keys()
        pkey = self._load_keyfile() if self.keyfile else None
        host, port = self._endpoint()
        deadline = time.monotonic() + self.connection_timeout
        while True:
            try:
                self._transport = self._handshake(host, port, expected, source, deadline)
                break
            except (OSError, EOFError, paramiko.SSHException) as e:
                if time.monotonic() + RETRY_PAUSE >= deadline:
                    raise SSHError(f"could not connect to {self.who} within {self.connection_timeout:g} s: "
                                   f"{str(e) or type(e).__name__}") from None
                time.sleep(RETRY_PAUSE)
        try:
            self._authenticate(self._transport, pkey)
        except BaseException:
            self._transport.close()
            self._transport = None
            raise
        self._transport.set_keepalive(self.keepalive)
        self._lost = None
        self.logger.info("connected to %s", self.who)

    def _load_keyfile(self) -> paramiko.PKey:
        path = self._resolve(self.keyfile)
        try:
            return paramiko.PKey.from_path(path)
        except (OSError, paramiko.SSHException, paramiko.pkey.UnknownKeyType) as e:
            raise SSHError(f"cannot use keyfile {path}: {e}") from None

    def _handshake(self, host: str, port: int, expected: list[paramiko.PKey], source: str,
                   deadline: float) -> paramiko.Transport:
        limit = max(0.5, min(10.0, deadline - time.monotonic()))
        sock = socket.create_connection((host, port), timeout=limit)
        try:
            _tcp_keepalive(sock, self.keepalive)
            # A forwarded port accepts before sshd runs and then hangs up; wait for the banner
            # here so paramiko does not log a failed negotiation for every early try.
            if not sock.recv(4, socket.MSG_PEEK):
                raise ConnectionResetError("closed before sending an SSH banner")
            transport = _Transport(sock)
        except BaseException:
            sock.close()
            raise
        try:
            transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = limit
            transport.get_security_options().key_types = host_key_algorithms(expected)
            transport.start_client(timeout=limit)
            check_host_key(transport.get_remote_server_key(), expected, self.who, source)
        except BaseException:
            transport.close()
            raise
        return transport

    def _authenticate(self, transport: paramiko.Transport, pkey: paramiko.PKey | None) -> None:
        username, password = self.networkservice.username, self.networkservice.password
        failure = None
        try:
            if pkey is not None:
                try:
                    transport.auth_publickey(username, pkey)
                except paramiko.AuthenticationException as e:
                    failure = f"key {self.keyfile} refused ({e})"
            if not transport.is_authenticated() and password is not None:
                transport.auth_password(username, password)
            if not transport.is_authenticated() and pkey is None and password is None:
                transport.auth_none(username)
        except paramiko.AuthenticationException as e:
            failure = "; ".join(filter(None, [failure, f"password refused ({e})" if password is not None else str(e)]))
        if not transport.is_authenticated():
            raise SSHError(f"authentication as {self.who} failed: {failure or 'no method accepted'}; "
                           f"check the NetworkService password or the keyfile")

    def _live(self) -> paramiko.Transport:
        if self._lost is not None:
            raise SSHError(f"connection to {self.who} lost: {self._lost}; deactivate and activate the "
                           f"driver to reconnect")
        transport = self._transport
        if transport is None:
            raise SSHError(f"not connected to {self.who}")
        if transport_dead(transport):
            raise self._lost_error(transport)
        return transport

    def answers(self, transport: paramiko.Transport) -> bool:
        """Whether the board answers on this connection now: it must confirm a new channel within
        ``probe_timeout`` (TCP alone can look alive while nothing behind it runs)."""
        try:
            transport.open_session(timeout=self.probe_timeout).close()
            return True
        except (paramiko.SSHException, OSError, EOFError):
            return False

    def _silent_error(self, what: str, silent: float) -> SSHError:
        """The board stopped answering: this connection is given up (nothing more is sent on it)."""
        self._lost = f"the board stopped answering (no answer to a probe within {self.probe_timeout:g} s)"
        if self._transport is not None:
            self._transport.close()
        return SSHError(f"{self.who} stopped answering on SSH while running {what!r}: {silent:.0f} s without "
                        f"output, then no answer to a probe within {self.probe_timeout:g} s (a kernel panic, a "
                        "hang or a reset of the board: its console says which)")

    def _lost_error(self, transport: paramiko.Transport, what: str | None = None,
                    stdout: list[str] | None = None, stderr: list[str] | None = None) -> SSHError:
        if self._lost is None:
            cause = transport.get_exception()
            self._lost = ("the board or the network closed it" if cause is None or isinstance(cause, EOFError)
                          else str(cause) or type(cause).__name__)
        during = f" while running {what!r}" if what else ""
        return SSHError(f"connection to {self.who} lost{during}: {self._lost}", stdout, stderr)

    def _open(self, line: str, what: str, *, combine: bool = False, timeout: float | None = None) -> paramiko.Channel:
        transport = self._live()
        try:
            chan = transport.open_session(timeout=timeout or self.command_timeout)
            chan.set_combine_stderr(combine)
            chan.exec_command(line)
        except (paramiko.SSHException, OSError, EOFError) as e:
            if transport_dead(transport):
                raise self._lost_error(transport, what) from None
            raise SSHError(f"cannot start {what!r} on {self.who}: {e}") from None
        return chan

    # --- running commands ----------------------------------------------------------------
    def _collect(self, chan: paramiko.Channel, what: str, timeout: float, *, sink=None,
                 idle: bool = False, token: str | None = None) -> tuple[int, bytes, bytes]:
        """Read stdout (into ``sink`` if given) and stderr until the command has ended.

        ``timeout`` bounds the whole command, or with ``idle`` the time without any data (a
        transfer of any size may take as long as it keeps moving)."""
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        transport = chan.get_transport()
        try:
            while True:
                moved = False
                while chan.recv_ready():
                    data = chan.recv(CHUNK)
                    if not data:
                        break
                    moved = True
                    if sink is None:
                        out += data
                    else:
                        sink(data)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(CHUNK)
                    moved = True
                if (chan.exit_status_ready() and (chan.eof_received or chan.closed)
                        and not chan.recv_ready() and not chan.recv_stderr_ready()):
                    break
                if transport_dead(transport):
                    raise self._lost_error(transport, what, split_lines(out, "utf-8", "replace"),
                                           split_lines(err, "utf-8", "replace"))
                if idle and moved:
                    deadline = time.monotonic() + timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    ended = (f"ended ({describe_status(exit_code(chan))}) but its output stayed open for "
                             f"{timeout:g} s (a background process holding stdout/stderr?)"
                             if chan.exit_status_ready() else
                             f"made no progress for {timeout:g} s" if idle else
                             f"did not finish within {timeout:g} s")
                    self._stop(chan, token)
                    raise SSHError(f"{what!r} {ended}; stopped it", split_lines(out, "utf-8", "replace"),
                                   split_lines(err, "utf-8", "replace"))
                select.select([chan], [], [], min(remaining, 0.2))
            status = exit_code(chan)
            if status == -1 and not hasattr(chan, "hil_exit_signal") and transport_dead(transport):
                raise self._lost_error(transport, what, split_lines(out, "utf-8", "replace"),
                                       split_lines(err, "utf-8", "replace"))
            return status, bytes(out), bytes(err)
        finally:
            chan.close()

    def _stop(self, chan: paramiko.Channel, token: str | None) -> None:
        """Close the channel and kill what the command started (best effort)."""
        chan.close()
        if token is None or self._transport is None or transport_dead(self._transport):
            return
        try:
            line = kill_job_command(token)
            self._collect(self._open(line, "stop job", timeout=KILL_TIMEOUT), "stop job", KILL_TIMEOUT)
        except ExecutionError as e:
            self.logger.warning("could not stop the processes of a command: %s", e)

    def _exec(self, cmd: str, *, timeout: float | None = None, stdin: bytes | None = None,
              env: Mapping[str, str] | None = None, cwd: str | None = None) -> tuple[int, bytes, bytes]:
        timeout = self.command_timeout if timeout is None else float(timeout)
        token = secrets.token_hex(8)
        chan = self._open(job_command(cmd, token, env=env, cwd=cwd), cmd)
        try:
            chan.settimeout(timeout)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
        except OSError:
            pass  # the command ended without reading its input; its status tells
        status, out, err = self._collect(chan, cmd, timeout, token=token)
        if status > 128 or status == -1:
            self.logger.info("%r: %s", cmd, describe_status(status))
        return status, out, err

    def _run(self, cmd: str, *, timeout: float | None = None, codec: str = "utf-8",
             decodeerrors: str = "strict") -> tuple[list[str], list[str], int]:
        status, out, err = self._exec(cmd, timeout=timeout)
        return split_lines(out, codec, decodeerrors), split_lines(err, codec, decodeerrors), status

    @Driver.check_active
    @step(args=["cmd", "timeout"], result=True)
    def run(self, cmd: str, *, timeout: float | None = None, codec: str = "utf-8", decodeerrors: str = "strict"):
        """Run a shell command line; (stdout lines, stderr lines, exit status).

        A command killed by signal N gives 128 + N like a shell (139: segmentation fault);
        -1 means the server reported neither a status nor a signal."""
        return self._run(cmd, timeout=timeout, codec=codec, decodeerrors=decodeerrors)

    def _run_check(self, cmd: str, *, timeout: float | None = None, codec: str = "utf-8",
                   decodeerrors: str = "strict") -> list[str]:
        stdout, stderr, status = self._run(cmd, timeout=timeout, codec=codec, decodeerrors=decodeerrors)
        if status != 0:
            tail = "\n".join(stderr[-20:])
            raise SSHError(f"{cmd!r} failed on {self.who}: {describe_status(status)}"
                           + (f"\nstderr:\n{tail}" if tail else ""), stdout, stderr)
        return stdout

    @Driver.check_active
    @step(args=["cmd"], result=True)
    def run_check(self, cmd: str, *, timeout: float | None = None, codec: str = "utf-8",
                  decodeerrors: str = "strict") -> list[str]:
        """Run a command line, return its stdout lines; ExecutionError with its stderr if it fails."""
        return self._run_check(cmd, timeout=timeout, codec=codec, decodeerrors=decodeerrors)

    def get_status(self) -> int:
        """1 while connected."""
        return int(self._transport is not None and not transport_dead(self._transport) and self._lost is None)

    # --- programs that keep running ------------------------------------------------------
    @Driver.check_active
    @step(args=["command", "cwd"])
    def start(self, command: str, *, env: dict[str, str] | None = None, cwd: str | None = None) -> "SSHProcess":
        token = secrets.token_hex(8)
        chan = self._open(job_command(command, token, env=env, cwd=cwd), command, combine=True)
        chan.settimeout(self.command_timeout)  # bounds a send() the program does not read
        proc = SSHProcess(command, chan, self, token)
        self._processes.add(proc)
        return proc

    # --- files ---------------------------------------------------------------------------
    def _upload(self, path: Path, line: str, what: str, on_chunk: Callable[[bytes], None] | None = None,
                timeout: float | None = None) -> None:
        """Stream a local file into the stdin of ``line``; fail with the board's stderr."""
        timeout = self.command_timeout if timeout is None else float(timeout)
        token = secrets.token_hex(8)
        chan = self._open(job_command(line, token), what)
        chan.settimeout(timeout)  # a send that cannot proceed this long is a stalled transfer
        try:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    chan.sendall(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
            chan.shutdown_write()
        except socket.timeout:
            self._stop(chan, token)
            raise SSHError(f"{what}: the board accepted no data for {timeout:g} s; stopped") from None
        except OSError:
            pass  # the command ended early (cat failed, or the connection dropped): see below
        status, _, err = self._collect(chan, what, timeout, idle=True, token=token)
        if status != 0:
            stderr = split_lines(err, "utf-8", "replace")
            raise SSHError(f"{what} failed on {self.who}: {describe_status(status)}: {' '.join(stderr[-5:])}",
                           None, stderr)

    @Driver.check_active
    @step(args=["filename", "remotepath"])
    def put(self, filename: str, remotepath: str = "", *, timeout: float | None = None) -> None:
        """Copy a local file to the board (into ``remotepath`` if that is a directory); keeps its mode."""
        mode = stat.S_IMODE(os.stat(filename).st_mode) & 0o777
        line = put_command(remotepath, os.path.basename(filename), mode)
        self._upload(Path(filename), line, f"put {filename} -> {remotepath or '~'}", timeout=timeout)

    @Driver.check_active
    @step(args=["filename", "destination"])
    def get(self, filename: str, destination: str = ".", *, timeout: float | None = None) -> None:
        """Copy a file from the board (into ``destination`` if that is a directory)."""
        timeout = self.command_timeout if timeout is None else float(timeout)
        target = Path(destination)
        if target.is_dir():
            target = target / posixpath.basename(filename)
        tmp = target.with_name(target.name + deploymod.TMP_SUFFIX)
        what = f"get {filename} -> {target}"
        token = secrets.token_hex(8)
        try:
            with open(tmp, "wb") as f:  # a bad destination fails before anything runs on the board
                chan = self._open(job_command(f"cat -- {shlex.quote(filename)}", token), what)
                try:
                    chan.shutdown_write()
                except OSError:
                    pass
                status, _, err = self._collect(chan, what, timeout, sink=f.write, idle=True, token=token)
            if status != 0:
                raise SSHError(f"{what} failed on {self.who}: {describe_status(status)}: "
                               f"{err.decode(errors='replace').strip()}", None, split_lines(err, "utf-8", "replace"))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    @Driver.check_active
    @step(args=["remote_dir", "progress"])
    def deploy(self, files: Mapping[str, Path], remote_dir: str, *, progress: bool = True) -> DeployResult:
        """Copy ``files`` (relative remote path -> local file) below ``remote_dir``, sending only
        what the board's manifest does not already confirm; see :mod:`hil.lab.deploy`."""

        def execute(cmd: str, *, stdin: bytes | None = None, timeout: float | None = None) -> str:
            status, out, err = self._exec(cmd, stdin=stdin, timeout=timeout)
            if status != 0:
                raise SSHError(f"{cmd!r} failed on {self.who}: {describe_status(status)}: "
                               f"{err.decode(errors='replace').strip()}")
            return out.decode(errors="replace")

        def upload(path: Path, dst: str, line: str, on_chunk: Callable[[bytes], None]) -> None:
            self._upload(path, line, f"deploy {path} -> {dst}", on_chunk)

        return deploymod.deploy(files, remote_dir, execute=execute, upload=upload, progress=progress,
                                logger=self.logger)


class SSHProcess(RemoteProcess):
    """A program started over an SSH channel, stdout and stderr merged."""

    def __init__(self, command: str, chan: paramiko.Channel, driver: ParamikoSSHDriver, token: str):
        super().__init__(command)
        self._chan, self._driver, self._token = chan, driver, token
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._eof = False
        self._heard = time.monotonic()  # when the board last sent or confirmed something

    def _check_connection(self) -> None:
        transport = self._chan.get_transport()
        if transport_dead(transport):
            raise self._driver._lost_error(transport, self.command)

    def _recv(self, timeout: float) -> str | None:
        chan = self._chan
        if self._eof:
            chan.status_event.wait(timeout)
            return None
        if not chan.recv_ready() and not (chan.eof_received or chan.closed):
            select.select([chan], [], [], timeout)
        if chan.recv_ready():
            self._heard = time.monotonic()
            return self._decoder.decode(chan.recv(CHUNK))
        if not (chan.eof_received or chan.closed):
            self._check_connection()
            self._probe_if_silent()
            return ""
        self._eof = True
        return self._decoder.decode(b"", final=True) or None

    def _probe_if_silent(self) -> None:
        """After ``probe_after`` s of silence, ask the board whether it is still there."""
        silent = time.monotonic() - self._heard
        if not self._driver.probe_after or silent < self._driver.probe_after:
            return
        if not self._driver.answers(self._chan.get_transport()):
            raise self._driver._silent_error(self.command, silent)
        self._heard = time.monotonic()

    def _send(self, data: bytes) -> None:
        try:
            self._chan.sendall(data)
        except socket.timeout:
            raise ProcessTimeout(f"{self.command!r} did not read its input", output=self.output) from None
        except OSError:
            self._check_connection()
            status = exit_code(self._chan) if self._chan.exit_status_ready() else None
            raise ProcessExited(f"{self.command!r} no longer reads input ({describe_exit(status)})",
                                output=self.output, status=status) from None

    def _exit_status(self) -> int | None:
        if not self._eof or not self._chan.exit_status_ready():
            return None
        status = exit_code(self._chan)
        if status == -1:
            self._check_connection()
        return status

    def _close(self) -> None:
        if not self._chan.exit_status_ready():
            self._driver._stop(self._chan, self._token)
        self._chan.close()

    def send_eof(self) -> None:
        """Close the program's stdin."""
        self._chan.shutdown_write()
