"""ParamikoSSHDriver against a booted twin: commands, timeouts, signals, host-key pinning,
file transfer and deploy over dropbear, programs that keep running, secrets, and a board
that loses power under a running command.

One bench and one boot for the module; the last test powers the board off and boots it
again to show the driver reconnects on its next activation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from labgrid import Target
from labgrid.driver.exception import ExecutionError
from labgrid.resource import NetworkService
from labgrid.step import steps

from hil.lab.deploy import MANIFEST, DeployError
from hil.lab.paramikossh import HostKeyMismatch, ParamikoSSHDriver, SSHError, fingerprint, parse_host_key
from hil.lab.process import ProcessExited

pytestmark = pytest.mark.twin

PASSWORD = "hil-twin-3vQ8"
REMOTE = "/userdata/paramiko-deploy"


def make_target(bench, name: str, *, password: str | None = PASSWORD, **driver) -> tuple[Target, ParamikoSSHDriver]:
    t = Target(name)
    NetworkService(t, None, address="127.0.0.1", port=bench.ports(1)["ssh"], username="root", password=password)
    driver.setdefault("host_key", bench.host_key)
    return t, ParamikoSSHDriver(t, None, **driver)


@pytest.fixture(scope="module")
def bench(start_bench):
    bench = start_bench(boards=1)
    bench.host_key = bench.call("GET", "/hostkey")[1].decode().strip()
    assert bench.call("PUT", "/outlet/1", b"1") == (200, b"1")
    return bench


@pytest.fixture(scope="module")
def ssh(bench):
    """The module's driver, connected once sshd is up (connection_timeout covers the boot)."""
    t, d = make_target(bench, "paramiko-ssh", connection_timeout=90)
    t.activate(d)
    yield d
    t.deactivate_all_drivers()


def until(condition, timeout: float = 10.0):
    """Poll ``condition`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{condition} did not hold within {timeout} s"
        time.sleep(0.1)
    return result


def running(ssh, pattern: str) -> list[str]:
    """Processes on the board whose command line matches ``pattern``."""
    out, _, _ = ssh.run("ps -o pid,args", timeout=10)
    return [line for line in out if re.search(pattern, line) and "ps -o" not in line]


# --- commands ------------------------------------------------------------------------------
def test_run_returns_stdout_stderr_and_exit_status(ssh):
    out, err, rc = ssh.run("echo out; echo 'two words'; echo err >&2; exit 3")
    assert (out, err, rc) == (["out", "two words"], ["err"], 3)
    assert ssh.run("cat", timeout=5) == ([], [], 0)  # stdin is closed, not left waiting


def test_run_check_raises_with_stderr(ssh):
    assert ssh.run_check("echo fine") == ["fine"]
    with pytest.raises(ExecutionError) as e:
        ssh.run_check("ls /no/such/dir")
    assert "'ls /no/such/dir' failed" in str(e.value) and "exit status 1" in str(e.value)
    assert "No such file or directory" in str(e.value) and e.value.stderr


def test_timeout_closes_the_command_and_stops_what_it_started(ssh):
    t0 = time.monotonic()
    with pytest.raises(ExecutionError) as e:
        ssh.run("sleep 30", timeout=1)
    assert time.monotonic() - t0 < 5
    assert "'sleep 30' did not finish within 1 s" in str(e.value)
    with pytest.raises(ExecutionError, match="did not finish within 1 s"):
        ssh.run("sleep 31 | cat; sleep 32", timeout=1)
    assert running(ssh, r"sleep 3[012]") == []
    assert ssh.run("echo still usable") == (["still usable"], [], 0)


def test_default_timeout_is_command_timeout(bench):
    t, d = make_target(bench, "paramiko-short", command_timeout=1.5)
    t.activate(d)
    try:
        with pytest.raises(ExecutionError, match=r"'sleep 20' did not finish within 1\.5 s"):
            d.run("sleep 20")
        with pytest.raises(ExecutionError, match=r"'sleep 21' did not finish within 1\.5 s"):
            d.run_check("sleep 21")
    finally:
        t.deactivate_all_drivers()


@pytest.mark.parametrize("cmd", [
    "sh -c 'kill -SEGV $$'",          # the command itself dies: dropbear reports the signal
    "sh -c 'kill -SEGV $$'; exit $?",  # a shell reports it: status 128 + 11
])
def test_death_by_signal_is_named(ssh, cmd):
    assert ssh.run(cmd)[2] == 139
    with pytest.raises(ExecutionError, match=r"exit status 139 \(SIGSEGV: segmentation fault\)"):
        ssh.run_check(cmd)


# --- host keys -----------------------------------------------------------------------------
def test_wrong_pinned_host_key_is_refused_with_both_fingerprints(bench):
    wrong = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    t, d = make_target(bench, "paramiko-wrong-key", host_key=wrong)
    t0 = time.monotonic()
    with pytest.raises(HostKeyMismatch) as e:
        t.activate(d)
    assert time.monotonic() - t0 < 10  # refused at once, not retried until connection_timeout
    text = str(e.value)
    assert fingerprint(parse_host_key(wrong)) in text and fingerprint(parse_host_key(bench.host_key)) in text
    assert f"host key mismatch for root@127.0.0.1:{bench.ports(1)['ssh']}" in text


def test_known_hosts_file_pins_the_key(bench, tmp_path):
    port = bench.ports(1)["ssh"]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {bench.host_key}\n")
    t, d = make_target(bench, "paramiko-known-hosts", host_key=None, known_hosts=str(tmp_path / "known_hosts"))
    t.activate(d)
    try:
        assert d.run_check("echo via known_hosts") == ["via known_hosts"]
    finally:
        t.deactivate_all_drivers()


def test_a_refused_keyfile_falls_back_to_the_password(bench, tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    t, d = make_target(bench, "paramiko-keyfile", keyfile=str(key))
    t.activate(d)
    try:
        assert d.run_check("echo in") == ["in"]
    finally:
        t.deactivate_all_drivers()
    t, d = make_target(bench, "paramiko-keyfile-only", keyfile=str(key), password=None)
    with pytest.raises(SSHError, match=r"authentication as root@127\.0\.0\.1:\d+ failed: key .*id_ed25519 refused"):
        t.activate(d)


# --- files ---------------------------------------------------------------------------------
def test_put_get_round_trip_of_a_binary_file(ssh, tmp_path):
    data = bytes(range(256)) * 64 + os.urandom(1 << 20) + b"\r\n\x00"
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    local.chmod(0o750)
    ssh.put(str(local), "/tmp/")
    digest = hashlib.sha256(data).hexdigest()
    assert ssh.run_check("sha256sum /tmp/blob.bin") == [f"{digest}  /tmp/blob.bin"]
    assert ssh.run_check("stat -c %a /tmp/blob.bin") == ["750"]
    ssh.put(str(local), "/tmp/renamed.bin")
    (tmp_path / "back").mkdir()
    ssh.get("/tmp/renamed.bin", str(tmp_path / "back"))
    assert hashlib.sha256((tmp_path / "back" / "renamed.bin").read_bytes()).hexdigest() == digest
    with pytest.raises(ExecutionError, match="No such file"):
        ssh.get("/tmp/absent.bin", str(tmp_path / "back"))
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["renamed.bin"]


# --- deploy --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    src = tmp_path_factory.mktemp("bundle")
    (src / "lib").mkdir()
    (src / "demo").write_text("#!/bin/sh\necho demo ran \"$@\"\n")
    (src / "demo").chmod(0o755)
    (src / "lib" / "librkllmrt.so").write_bytes(os.urandom(300_000))
    (src / "model.rkllm").write_bytes(os.urandom(700_000))
    return {"demo": src / "demo", "lib/librkllmrt.so": src / "lib" / "librkllmrt.so",
            "models/model.rkllm": src / "model.rkllm"}


def board_sha256(ssh, rel: str) -> str:
    return ssh.run_check(f"sha256sum {REMOTE}/{rel}")[0].split()[0]


def test_deploy_twice_sends_nothing_the_second_time(ssh, bundle):
    ssh.run(f"rm -rf {REMOTE}")
    first = ssh.deploy(bundle, REMOTE, progress=False)
    assert first.sent == list(bundle) and first.skipped == []
    assert first.bytes_sent == sum(p.stat().st_size for p in bundle.values())
    for rel, local in bundle.items():
        assert board_sha256(ssh, rel) == hashlib.sha256(local.read_bytes()).hexdigest() == first.manifest[rel]
    assert ssh.run_check(f"{REMOTE}/demo x") == ["demo ran x"]  # still executable
    assert MANIFEST in ssh.run_check(f"ls -a {REMOTE}")

    second = ssh.deploy(bundle, REMOTE, progress=False)
    assert second.sent == [] and second.bytes_sent == 0 and sorted(second.skipped) == sorted(bundle)
    assert second.manifest == first.manifest


def test_deploy_after_changing_one_file_sends_only_it(ssh, bundle):
    ssh.deploy(bundle, REMOTE, progress=False)
    bundle["lib/librkllmrt.so"].write_bytes(os.urandom(300_000))
    result = ssh.deploy(bundle, REMOTE, progress=False)
    assert result.sent == ["lib/librkllmrt.so"] and result.bytes_sent == 300_000
    expected = hashlib.sha256(bundle["lib/librkllmrt.so"].read_bytes()).hexdigest()
    assert board_sha256(ssh, "lib/librkllmrt.so") == expected == result.manifest["lib/librkllmrt.so"]
    assert ssh.run_check(f"ls {REMOTE}/lib") == ["librkllmrt.so"]  # no temporary file left


def test_deploy_with_too_little_space_refuses_before_sending(ssh, bundle, tmp_path):
    huge = tmp_path / "huge.rkllm"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # sparse: nothing is written locally
    free_kib = int(ssh.run_check("df -kP /userdata")[-1].split()[3])
    with pytest.raises(DeployError) as e:
        ssh.deploy({**bundle, "models/huge.rkllm": huge}, REMOTE, progress=False)
    text = str(e.value)
    assert "need 1073741824 bytes" in text and f"/userdata has {free_kib * 1024} bytes" in text
    assert ssh.run(f"test -e {REMOTE}/models/huge.rkllm.hil-tmp || test -e {REMOTE}/models/huge.rkllm")[2] == 1


# --- programs that keep running ------------------------------------------------------------
def test_start_an_interactive_shell_and_expect_its_answers(ssh):
    with ssh.start("sh", env={"GREETING": "hello 'board' $HOME"}, cwd="/userdata") as proc:
        proc.sendline('echo "$GREETING in $(pwd)"')
        proc.expect(r"hello 'board' \$HOME in /userdata\n", timeout=5)
        proc.sendline("echo to-stderr >&2")
        proc.expect("to-stderr", timeout=5)  # stderr is merged
        proc.sendline("read line; echo got:$line")
        proc.sendline("typed")
        proc.expect("got:typed", timeout=5)
        proc.sendline("exit 7")
        assert proc.wait(timeout=5) == 7
    with ssh.start("echo bye") as proc, pytest.raises(ProcessExited, match=r"exit status 0"):
        proc.expect("never printed", timeout=5)


def test_closing_a_running_program_stops_it(ssh):
    proc = ssh.start("sleep 41 | cat")
    until(lambda: running(ssh, "sleep 41"))
    proc.close()
    assert running(ssh, "sleep 41") == []


# --- secrets -------------------------------------------------------------------------------
def test_password_appears_in_no_log_step_or_error(bench, caplog):
    events = []
    steps.subscribe(events.append)
    caplog.set_level(logging.DEBUG)
    try:
        t, d = make_target(bench, "paramiko-secret", connection_timeout=30)
        t.activate(d)
        d.run_check("echo ok")
        with pytest.raises(ExecutionError) as failed:
            d.run_check("false")
        t.deactivate_all_drivers()
        wrong = "wrong-Secret-4711"
        t2, d2 = make_target(bench, "paramiko-bad-password", password=wrong)
        with pytest.raises(SSHError, match="authentication as root@127.0.0.1:.* failed") as denied:
            t2.activate(d2)
    finally:
        steps.unsubscribe(events.append)
    texts = [caplog.text, str(failed.value), repr(failed.value), str(denied.value), repr(denied.value), repr(d),
             repr(d2), *(str(e) for e in events), *(repr(e.data) for e in events)]
    assert "Authentication (password) successful" in caplog.text  # paramiko did log at DEBUG
    assert any("run_check" in str(e) for e in events)
    for text in texts:
        assert PASSWORD not in text and wrong not in text


# --- power loss (last: it reboots the board) -----------------------------------------------
def test_power_loss_under_a_command_is_a_clear_error_then_reactivation_reconnects(bench, ssh):
    proc = ssh.start("sh")
    cut = threading.Timer(1.0, bench.call, ("PUT", "/outlet/1", b"0"))
    cut.start()
    t0 = time.monotonic()
    with pytest.raises(ExecutionError) as e:
        ssh.run("sleep 60", timeout=60)
    assert time.monotonic() - t0 < 10
    port = bench.ports(1)["ssh"]
    assert f"connection to root@127.0.0.1:{port} lost while running 'sleep 60'" in str(e.value)
    with pytest.raises(ExecutionError, match="lost.*deactivate and activate the driver"):
        ssh.run("true")
    with pytest.raises(ExecutionError, match="lost while running 'sh'"):
        proc.sendline("echo x")
        proc.expect("x", timeout=5)
    assert ssh.get_status() == 0

    assert bench.call("PUT", "/outlet/1", b"1") == (200, b"1")
    target = ssh.target
    target.deactivate(ssh)
    target.activate(ssh)
    assert ssh.get_status() == 1
    assert float(ssh.run_check("cat /proc/uptime")[0].split()[0]) < 60  # a fresh boot
