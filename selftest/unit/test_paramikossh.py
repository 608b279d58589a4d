"""ParamikoSSHDriver and the deploy logic without a board: host keys, command lines run by
the host's busybox sh (the board's shell), the manifest rules and a whole deploy into a
local directory through the same command lines.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from unittest import mock

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from labgrid import Environment, Target
from labgrid.resource import NetworkService

from hil.lab import deploy as dep
from hil.lab.paramikossh import (HostKeyMismatch, ParamikoSSHDriver, SSHError, channel_request, check_host_key,
                                 exit_code, fingerprint, host_key_algorithms, job_command, kill_job_command,
                                 known_hosts_name, parse_host_key, put_command, split_lines)

SHELL = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["sh"]
PASSWORD = "s3cret-Pa55word"


def sh(cmd: str, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SHELL, "-c", cmd], input=stdin, capture_output=True, timeout=30, env=env)


def new_key_line() -> str:
    pub = Ed25519PrivateKey.generate().public_key()
    return pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


KEY_LINE = new_key_line()


def make_driver(**kwargs) -> ParamikoSSHDriver:
    t = Target("unit")
    NetworkService(t, None, address="192.0.2.7", port=2222, username="root", password=PASSWORD)
    return ParamikoSSHDriver(t, None, **kwargs)


# --- host keys -----------------------------------------------------------------------------
def test_host_key_line_parses_and_fingerprints_like_ssh_keygen():
    key = parse_host_key(KEY_LINE + " comment@host")
    blob = base64.b64decode(KEY_LINE.split()[1])
    expected = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert fingerprint(key) == f"ssh-ed25519 SHA256:{expected}"


@pytest.mark.parametrize("line", ["", "ssh-ed25519", "ssh-ed25519 not-base64!", "ssh-nope AAAAC3NzaC1lZDI1NTE5"])
def test_malformed_host_key_is_refused(line):
    with pytest.raises(ValueError, match="host_key"):
        parse_host_key(line)


def test_host_key_mismatch_names_both_fingerprints_and_the_source():
    pinned, offered = parse_host_key(KEY_LINE), parse_host_key(new_key_line())
    with pytest.raises(HostKeyMismatch) as e:
        check_host_key(offered, [pinned], "root@192.0.2.7:2222", "host_key")
    text = str(e.value)
    assert fingerprint(pinned) in text and fingerprint(offered) in text and "host_key" in text
    check_host_key(pinned, [offered, pinned], "x", "y")  # any pinned key of the host is fine


def test_known_hosts_names_and_rsa_algorithms():
    assert known_hosts_name("10.0.0.5", 22) == "10.0.0.5"
    assert known_hosts_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"
    rsa = mock.Mock(get_name=lambda: "ssh-rsa")
    assert host_key_algorithms([parse_host_key(KEY_LINE), rsa]) == ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]


# --- driver configuration ------------------------------------------------------------------
def test_exactly_one_of_host_key_and_known_hosts():
    with pytest.raises(ValueError, match="exactly one"):
        make_driver()
    with pytest.raises(ValueError, match="exactly one"):
        make_driver(host_key=KEY_LINE, known_hosts="kh")
    with pytest.raises(ValueError, match="host_key"):
        make_driver(host_key="ssh-ed25519 AAAA")


def test_driver_wins_the_protocols_and_never_shows_the_password():
    d = make_driver(host_key=KEY_LINE, connection_timeout=5)
    t = d.target
    assert t.get_driver("CommandProtocol", activate=False) is d
    assert t.get_driver("FileTransferProtocol", activate=False) is d
    assert t.get_driver("ProcessProtocol", activate=False) is d
    assert d.connection_timeout == 5.0 and d.command_timeout == 60.0
    assert PASSWORD not in repr(d) and PASSWORD not in d.who
    assert PASSWORD in repr(d.networkservice)  # labgrid's resource does show it: never log it


def test_known_hosts_is_resolved_next_to_the_environment_file(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "board").write_text(f"# lab boards\n[192.0.2.7]:2222 {KEY_LINE}\n10.9.9.9 {new_key_line()}\n")
    env_file = tmp_path / "env.yaml"
    env_file.write_text("targets:\n  main:\n    resources:\n      NetworkService: {address: 192.0.2.7, port: 2222, "
                        "username: root}\n    drivers:\n      ParamikoSSHDriver: {known_hosts: keys/board}\n"
                        "imports: [hil.lab]\n")
    d = Environment(str(env_file)).get_target("main").get_driver("ParamikoSSHDriver", activate=False)
    keys, source = d._expected_keys()
    assert [k.asbytes() for k in keys] == [parse_host_key(KEY_LINE).asbytes()]
    assert source == str(tmp_path / "keys" / "board")
    d.networkservice.port = 22
    with pytest.raises(SSHError, match=r"has no host key for 192\.0\.2\.7.*ssh-keyscan -p 22 192\.0\.2\.7"):
        d._expected_keys()


def test_missing_known_hosts_file_is_a_clear_error(tmp_path):
    d = make_driver(known_hosts=str(tmp_path / "nope"))
    with pytest.raises(SSHError, match="cannot read known_hosts file .*nope"):
        d._expected_keys()


def test_connect_gives_up_after_connection_timeout_with_the_last_error():
    d = make_driver(host_key=KEY_LINE, connection_timeout=0.6)
    d.networkservice.address, d.networkservice.port = "127.0.0.1", _closed_port()
    t0 = time.monotonic()
    with pytest.raises(SSHError, match=r"could not connect to root@127\.0\.0\.1:\d+ within 0\.6 s: .*refused"):
        d.target.activate(d)
    assert time.monotonic() - t0 < 3


def test_proxy_required_connects_through_a_forward_on_the_exporter():
    d = make_driver(host_key=KEY_LINE)
    d.networkservice.extra = {"proxy_required": True, "proxy": "exporter1"}
    with mock.patch("labgrid.util.ssh.sshmanager.request_forward", return_value=40001) as forward:
        assert d._endpoint() == ("localhost", 40001)
    forward.assert_called_once_with("exporter1", "192.0.2.7", 2222)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- command lines, run by the board's shell -------------------------------------------------
def test_job_command_quotes_env_values_and_cwd(tmp_path):
    odd = tmp_path / "dir with 'quotes' and $x"
    odd.mkdir()
    value = "a b 'c' \"d\" $HOME `id` ; exit 9"
    p = sh(job_command('printf "%s|%s|%s" "$V" "$(pwd)" "$HIL_JOB"', "tok1", env={"V": value}, cwd=str(odd)))
    assert p.returncode == 0 and p.stdout.decode() == f"{value}|{odd}|tok1"


def test_job_command_stops_when_cwd_is_missing(tmp_path):
    p = sh(job_command("echo ran", "tok", cwd=str(tmp_path / "missing")))
    assert p.returncode != 0 and b"ran" not in p.stdout


def test_job_command_refuses_bad_variable_names():
    with pytest.raises(ValueError, match="invalid environment variable name"):
        job_command("true", "t", env={"A;rm -rf /": "x"})


def test_kill_job_command_kills_the_jobs_processes_only():
    env = {"PATH": os.environ["PATH"]}
    job = subprocess.Popen([*SHELL, "-c", "sleep 60 & sleep 61; sleep 62; wait"], env={**env, "HIL_JOB": "feedc0de"})
    other = subprocess.Popen(["sleep", "63"], env={**env, "HIL_JOB": "feedc0de0"})  # a longer token
    try:
        deadline = time.monotonic() + 5
        while len(_with_token("feedc0de")) < 3:  # the shell and both sleeps
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sh(kill_job_command("feedc0de"), env=env).returncode == 0
        assert job.wait(timeout=5) == -signal.SIGKILL
        assert _with_token("feedc0de") == [] and other.poll() is None
    finally:
        for p in (job, other):
            p.kill()
            p.wait()


def test_a_job_s_own_shell_carries_its_token_so_a_loop_is_stopped_with_what_it_starts():
    """The line dropbear runs exports HIL_JOB, which /proc/PID/environ of the shell that exports it
    never shows (it holds the environment the process was started with): the job runs in a shell
    started after the export, so that a loop is found and stopped, not only its current child."""
    env = {"PATH": os.environ["PATH"]}
    job = subprocess.Popen([*SHELL, "-c", job_command("while :; do sleep 0.2; done", "c0ffee")], env=env)
    try:
        deadline = time.monotonic() + 5
        while len(_with_token("c0ffee")) < 2:  # the loop's shell and its sleep
            assert time.monotonic() < deadline, _with_token("c0ffee")
            time.sleep(0.05)
        assert job.pid in _with_token("c0ffee"), "the job's shell is the one started with the token"
        assert sh(kill_job_command("c0ffee"), env=env).returncode == 0
        assert job.wait(timeout=5) == -signal.SIGKILL
        assert _with_token("c0ffee") == []
    finally:
        job.kill()
        job.wait()


def _with_token(token: str) -> list[int]:
    """Live processes whose environment has HIL_JOB=token."""
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"HIL_JOB={token}".encode() in env.read_bytes().split(b"\0"):
                pids.append(int(env.parent.name))
        except OSError:
            pass
    return pids


def test_put_command_writes_into_a_directory_or_a_path_and_keeps_the_mode(tmp_path):
    assert sh(put_command(str(tmp_path), "tool", 0o755), b"#!/bin/sh\n").returncode == 0
    assert (tmp_path / "tool").read_bytes() == b"#!/bin/sh\n" and (tmp_path / "tool").stat().st_mode & 0o777 == 0o755
    assert sh(put_command(str(tmp_path / "renamed"), "tool", 0o600), b"x").returncode == 0
    assert (tmp_path / "renamed").stat().st_mode & 0o777 == 0o600
    p = sh(put_command(str(tmp_path / "no" / "dir"), "tool", 0o644), b"x")
    assert p.returncode != 0 and b"no/dir" in p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["renamed", "tool"]  # no temp file left


def test_exit_signal_is_kept_and_reported_as_a_shell_would():
    chan = paramiko.Channel(1)
    chan.transport = mock.Mock(server_object=None)
    m = paramiko.Message()
    for add, value in (("add_string", "exit-signal"), ("add_boolean", False), ("add_string", "SEGV"),
                       ("add_boolean", False), ("add_string", ""), ("add_string", "")):
        getattr(m, add)(value)
    m.rewind()
    channel_request(chan, m)
    assert chan.hil_exit_signal == "SEGV" and exit_code(chan) == 139
    chan.exit_status = 3
    assert exit_code(chan) == 3


def test_split_lines_like_labgrid():
    assert split_lines(b"a\r\nb\n\nc\n", "utf-8", "strict") == ["a\r", "b", "", "c"]
    assert split_lines(b"", "utf-8", "strict") == []
    assert split_lines(b"\xff\n", "utf-8", "replace") == ["\ufffd"]


# --- deploy: pure parts ----------------------------------------------------------------------
def test_manifest_round_trip_and_tolerance():
    entries = {"b/x.bin": "a" * 64, "a.txt": "0" * 64}
    assert dep.parse_manifest(dep.render_manifest(entries).decode()) == entries
    for text in ("", "not json", "[]", '{"format": 2, "files": {}}', '{"format": 1, "files": []}'):
        assert dep.parse_manifest(text) == {}
    assert dep.parse_manifest('{"format": 1, "files": {"a": "zz", "b": "' + "f" * 64 + '"}}') == {"b": "f" * 64}


def test_plan_hashes_only_files_the_manifest_may_confirm(tmp_path):
    files = {}
    for name, data in (("same", b"1"), ("changed", b"22"), ("resized", b"333"), ("new", b"4444")):
        (tmp_path / name).write_bytes(data)
        files[name] = dep.LocalFile(tmp_path / name, len(data), 0o644)
    sha = {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in files}
    manifest = {"same": sha["same"], "changed": "0" * 64, "resized": sha["resized"]}
    sizes = {"same": 1, "changed": 2, "resized": 99}
    hashed = []

    def hasher(path):
        hashed.append(path.name)
        return sha[path.name]

    assert dep.plan(files, manifest, sizes, hasher) == (["changed", "resized", "new"], ["same"])
    assert sorted(hashed) == ["changed", "same"]


@pytest.mark.parametrize("text, avail, mount", [
    ("Filesystem           1024-blocks    Used Available Capacity Mounted on\n"
     "/dev/vda                498900        24    488392   0% /userdata\n", 488392 * 1024, "/userdata"),
    ("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
     "/dev/mapper/very-long-volume-name-that-would-wrap 1000 10 990 1% /mnt/with space\n", 990 * 1024,
     "/mnt/with space"),
])
def test_parse_df(text, avail, mount):
    assert dep.parse_df(text) == (avail, mount)


def test_parse_df_refuses_garbage():
    with pytest.raises(dep.DeployError, match="free space"):
        dep.parse_df("df: /x: can't find mount point\n")


def test_parse_stat_and_sha256sum_map_back_to_relative_paths():
    assert dep.parse_stat_sizes("12 /d/a b\n0 /d/sub/c\n7 /elsewhere/x\n", "/d/") == {"a b": 12, "sub/c": 0}
    h = "ab" * 32
    assert dep.parse_sha256sum(f"{h}  /d/a b\nsha256sum: /d/x: No such file\n", "/d") == {"a b": h}


@pytest.mark.parametrize("rel", ["", "/abs", "../up", "a/../../b", "a\nb", "a\\b", ".hil-manifest.json",
                                 "x.hil-tmp"])
def test_relative_paths_that_would_escape_or_confuse_are_refused(rel):
    with pytest.raises(dep.DeployError, match="unusable relative path"):
        dep.check_rel_path(rel)


def test_relative_paths_are_normalised():
    assert dep.check_rel_path("./a//b/c") == "a/b/c"


def test_space_check_names_both_numbers():
    dep.check_space(100, 100, "/userdata", 1)
    with pytest.raises(dep.DeployError, match=r"2 file\(s\) need 1073741824 bytes \(1\.0 GiB\) but /userdata has "
                                              r"500105216 bytes \(476\.9 MiB\) free"):
        dep.check_space(1 << 30, 500105216, "/userdata", 2)


def test_verification_error_names_the_file_and_both_hashes():
    bad = dep.mismatches({"a": "1" * 64, "b": "2" * 64, "c": "3" * 64}, {"a": "1" * 64, "b": "f" * 64})
    assert bad == {"b": ("2" * 64, "f" * 64), "c": ("3" * 64, None)}
    text = str(dep.verification_error("/d", bad))
    assert f"/d/b: sent sha256 {'2' * 64}, board has {'f' * 64}" in text and "/d/c:" in text and "no file" in text


def test_long_file_lists_are_split_into_short_commands():
    rels = [f"dir/{'x' * 200}-{i}" for i in range(400)]
    commands = dep.stat_commands("/userdata/m", rels)
    assert len(commands) > 1 and all(len(c) <= dep.MAX_COMMAND + 100 for c in commands)
    assert sum(c.count("/userdata/m/dir/") for c in commands) == 400


def test_hash_cache_notices_a_changed_file(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"one")
    assert dep.sha256_file(f) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"two")
    os.utime(f, ns=(1, 1))
    assert dep.sha256_file(f) == hashlib.sha256(b"two").hexdigest()


# --- deploy into a local directory through the board's command lines ------------------------
class LocalBoard:
    """execute/upload for hil.lab.deploy, run by the host's busybox sh; counts uploads."""

    def __init__(self):
        self.uploads: list[str] = []
        self.corrupt: set[str] = set()  # local file names whose bytes get flipped on the way

    def execute(self, cmd, *, stdin=None, timeout=None):
        p = sh(cmd, stdin or b"")
        if p.returncode != 0:
            raise SSHError(f"{cmd!r}: {p.stderr.decode()}")
        return p.stdout.decode()

    def upload(self, path, dst, cmd, on_chunk):
        self.uploads.append(path.name)
        data = path.read_bytes()
        on_chunk(data)
        if path.name in self.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        p = sh(cmd, data)
        if p.returncode != 0:
            raise SSHError(f"{cmd!r}: {p.stderr.decode()}")

    def deploy(self, files, remote_dir):
        return dep.deploy(files, str(remote_dir), execute=self.execute, upload=self.upload, progress=True)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "demo").write_bytes(b"\x7fELF" + os.urandom(5000))
    (src / "demo").chmod(0o755)
    (src / "lib" / "librkllmrt.so").write_bytes(os.urandom(20000))
    (src / "model name.rkllm").write_bytes(os.urandom(30000))
    files = {"demo": src / "demo", "lib/librkllmrt.so": src / "lib" / "librkllmrt.so",
             "models/model name.rkllm": src / "model name.rkllm"}
    return files, tmp_path / "board" / "rkllm"


def test_deploy_sends_once_then_only_what_changed(tree):
    files, remote = tree
    board = LocalBoard()
    first = board.deploy(files, remote)
    assert first.sent == list(files) and first.skipped == [] and first.bytes_sent == 55004
    for rel, local in files.items():
        assert (remote / rel).read_bytes() == local.read_bytes()
    assert (remote / "demo").stat().st_mode & 0o777 == 0o755
    on_board = json.loads((remote / dep.MANIFEST).read_text())["files"]
    assert on_board == first.manifest == {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in files.items()}

    board.uploads.clear()
    second = board.deploy(files, remote)
    assert second.sent == [] and second.bytes_sent == 0 and sorted(second.skipped) == sorted(files)
    assert board.uploads == []

    files["lib/librkllmrt.so"].write_bytes(os.urandom(20000))  # same size, new content
    third = board.deploy(files, remote)
    assert third.sent == ["lib/librkllmrt.so"] and board.uploads == ["librkllmrt.so"]
    assert (remote / "lib/librkllmrt.so").read_bytes() == files["lib/librkllmrt.so"].read_bytes()
    assert third.manifest["lib/librkllmrt.so"] == hashlib.sha256(files["lib/librkllmrt.so"].read_bytes()).hexdigest()
    assert not list(remote.rglob("*" + dep.TMP_SUFFIX))


def test_deploy_resends_a_file_changed_on_the_board(tree):
    files, remote = tree
    board = LocalBoard()
    board.deploy(files, remote)
    (remote / "demo").write_bytes(b"truncated")
    board.uploads.clear()
    assert board.deploy(files, remote).sent == ["demo"] and board.uploads == ["demo"]


def test_deploy_verification_failure_names_the_file_and_is_not_recorded(tree):
    files, remote = tree
    board = LocalBoard()
    board.corrupt.add("librkllmrt.so")
    with pytest.raises(dep.DeployError) as e:
        board.deploy(files, remote)
    sent = hashlib.sha256(files["lib/librkllmrt.so"].read_bytes()).hexdigest()
    got = hashlib.sha256((remote / "lib/librkllmrt.so").read_bytes()).hexdigest()
    assert f"{remote}/lib/librkllmrt.so: sent sha256 {sent}, board has {got}" in str(e.value)
    manifest = dep.parse_manifest((remote / dep.MANIFEST).read_text())
    assert sorted(manifest) == ["demo", "models/model name.rkllm"]
    board.corrupt.clear()
    board.uploads.clear()
    assert board.deploy(files, remote).sent == ["lib/librkllmrt.so"] and board.uploads == ["librkllmrt.so"]


def test_deploy_forgets_old_hashes_before_sending(tree):
    """If a transfer breaks, the board must not keep claiming the old file's hash."""
    files, remote = tree
    board = LocalBoard()
    board.deploy(files, remote)
    files["demo"].write_bytes(b"\x7fELF" + os.urandom(5000))

    def broken(path, dst, cmd, on_chunk):
        raise SSHError("connection lost")

    with pytest.raises(SSHError, match="connection lost"):
        dep.deploy(files, str(remote), execute=board.execute, upload=broken, progress=False)
    assert "demo" not in dep.parse_manifest((remote / dep.MANIFEST).read_text())


def test_deploy_checks_space_before_sending(tree, monkeypatch):
    files, remote = tree
    board = LocalBoard()
    monkeypatch.setattr(dep, "parse_df", lambda text: (1000, "/userdata"))
    with pytest.raises(dep.DeployError, match=r"3 file\(s\) need 55004 bytes .* but /userdata has 1000 bytes"):
        board.deploy(files, remote)
    assert board.uploads == []


def test_deploy_refuses_two_names_for_one_remote_file(tree):
    files, remote = tree
    with pytest.raises(dep.DeployError, match="same remote file"):
        LocalBoard().deploy({"a/b": files["demo"], "a//b": files["demo"]}, remote)


def test_deploy_refuses_a_missing_local_file(tree, tmp_path):
    _, remote = tree
    with pytest.raises(dep.DeployError, match="cannot deploy x: .*No such file"):
        LocalBoard().deploy({"x": tmp_path / "missing"}, remote)
