"""The virtual bench through labgrid and env/twin.yaml: power, console, SSH, loader, flash.

One bench (real QEMU, HTTP outlet, TCP console, dropbear) for the module; the tests run
in order on its board, as a person at a bench would work through them.
"""

from __future__ import annotations

import json

import pytest
from labgrid import Environment

from hil.rockchip.flashtools import FlashToolError

from selftest.twin.conftest import run, ssh_client


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=1)


@pytest.fixture(scope="module")
def target(bench, tmp_path_factory):
    bench.acquire(1)
    env = bench.environment(tmp_path_factory.mktemp("env"))
    target = env.get_target("main")
    yield target
    target.cleanup()


def boot_to_shell(target):
    """Power-cycle and log in on the serial console; returns the ShellDriver."""
    for name in ("ShellDriver", "ParamikoSSHDriver"):
        target.deactivate(target.get_driver(name, activate=False))
    target.get_driver("PowerProtocol").cycle()
    return target.get_driver("ShellDriver")


def test_power_cycle_boots_uboot_kernel_and_login(bench, target, console_tap):
    tap = console_tap(bench.ports()["console"])
    shell = boot_to_shell(target)
    tap.wait_for(r"U-Boot 20\d\d\.\d\d", timeout=5)
    tap.wait_for(r"Linux version 6\.1\.\d+", timeout=5)
    tap.wait_for(r"myd-lr3576 login:", timeout=5)
    assert shell.run_check("hostname") == ["myd-lr3576"]
    assert shell.run_check("echo $PS1") == ["\\u@\\h:\\w\\$"]
    assert bench.board()["mode"] == "running"


def test_power_off_is_a_hard_cut_and_console_stays_up(bench, target, console_tap):
    boot_to_shell(target)
    tap = console_tap(bench.ports()["console"])
    pid = bench.board()["qemu_pid"]
    target.deactivate(target.get_driver("ShellDriver"))
    target.get_driver("PowerProtocol").off()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    assert "going down" not in tap.text and "reboot:" not in tap.text  # no orderly shutdown
    late = console_tap(bench.ports()["console"])  # the console server still accepts clients
    assert bench.board()["console"]["clients"] >= 2
    late.close()
    assert bench.call("GET", "/outlet/1")[1] == b"0"


def test_ssh_with_pinned_host_key_and_sftp(bench, target, tmp_path):
    boot_to_shell(target)
    client = ssh_client(bench)
    try:
        rc, out = run(client, "cat /proc/cmdline")
        assert rc == 0 and "twin.timescale=0.05" in out
        sftp = client.open_sftp()
        with sftp.file("/tmp/hello", "w") as f:
            f.write("from sftp")
        assert run(client, "cat /tmp/hello")[1] == "from sftp"
        assert run(client, "exit 3")[0] == 3
    finally:
        client.close()
    # the suite's SSH driver (paramiko, pinned host key from the env) works against the same port.
    ssh = target.get_driver("ParamikoSSHDriver")
    stdout, _, rc = ssh.run("uname -r", timeout=30)
    assert rc == 0 and stdout[0].startswith("6.1.")


def test_userdata_survives_power_cycle(bench, target):
    shell = boot_to_shell(target)
    shell.run_check("echo kept-across-power > /userdata/marker && sync")
    shell = boot_to_shell(target)
    assert shell.run_check("cat /userdata/marker") == ["kept-across-power"]
    assert "/userdata" in shell.run_check("grep userdata /proc/mounts")[0]


def test_flash_refused_outside_loader_mode(bench, target, twin_images):
    boot_to_shell(target)
    flash = target.get_driver("TwinFlashDriver")
    with pytest.raises(FlashToolError, match="not in loader mode"):
        flash.flash(str(twin_images / "twin-rkllm-1.3.0.img"))
    assert bench.call("GET", "/health")[0] == 200


def test_reboot_loader_then_flash_new_image(bench, target, twin_images):
    shell = boot_to_shell(target)
    shell.run_check("echo before-flash > /userdata/marker && sync")
    target.deactivate(shell)
    ssh = target.get_driver("ParamikoSSHDriver")
    ssh.run("reboot loader", timeout=30)
    target.deactivate(ssh)
    flash = target.get_driver("TwinFlashDriver")
    assert flash.await_loader(timeout=30) == "Loader"
    assert json.loads(bench.call("GET", "/usb/1")[1])["pid"] == "0x350e"
    flash.flash(str(twin_images / "twin-rkllm-1.3.0.img"))
    flash.reset()
    shell = target.get_driver("ShellDriver")
    info = dict(line.split("=", 1) for line in shell.run_check("cat /etc/build-info"))
    assert info["BUILD_IMAGE"] == "twin-rkllm-1.3.0"
    assert shell.run_check("strings /usr/lib/librkllmrt.so | grep runtime") == ["rkllm-runtime version: 1.3.0"]
    assert shell.run_check("cat /userdata/marker") == ["before-flash"]  # not wiped unless asked


def test_corrupt_image_is_refused_and_bench_keeps_running(bench, target, twin_images, tmp_path):
    shell = boot_to_shell(target)
    target.deactivate(shell)
    ssh = target.get_driver("ParamikoSSHDriver")
    ssh.run("reboot loader", timeout=30)
    target.deactivate(ssh)
    flash = target.get_driver("TwinFlashDriver")
    flash.await_loader(timeout=30)
    good = (twin_images / "twin-good.img").read_bytes()
    corrupt = tmp_path / "corrupt.img"
    corrupt.write_bytes(good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 0xFF]) + good[len(good) // 2 + 1:])
    with pytest.raises(FlashToolError, match="corrupt"):
        flash.flash(str(corrupt))
    truncated = tmp_path / "truncated.img"
    truncated.write_bytes(good[:4096])
    with pytest.raises(FlashToolError, match="truncated|corrupt|incomplete"):
        flash.flash(str(truncated))
    garbage = tmp_path / "not-an-image.img"
    garbage.write_bytes(b"hello" * 1000)
    with pytest.raises(FlashToolError, match="not a twin firmware image"):
        flash.flash(str(garbage))
    assert bench.call("GET", "/health")[0] == 200
    # A good image still goes in, wiping /userdata when asked to.
    flash.flash(str(twin_images / "twin-good.img"), wipe_userdata=True)
    flash.reset()
    shell = target.get_driver("ShellDriver")
    assert shell.run_check("grep BUILD_IMAGE /etc/build-info") == ["BUILD_IMAGE=twin-good"]
    assert shell.run("test -e /userdata/marker")[2] == 1


def test_maskrom_button_needs_loader_download(bench, target, twin_images):
    button = target.get_driver("DigitalOutputProtocol")
    target.deactivate(target.get_driver("ShellDriver", activate=False))
    button.set(True)
    try:
        target.get_driver("PowerProtocol").cycle()
        flash = target.get_driver("TwinFlashDriver")
        assert flash.await_loader(timeout=10) == "Maskrom"
        status, body = bench.call("PUT", "/usb/1/image", (twin_images / "twin-good.img").read_bytes())
        assert status == 409 and b"download the loader" in body
        flash.flash(str(twin_images / "twin-rkllm-1.3.0.img"))  # the driver runs db first
    finally:
        button.set(False)
    # Released button and a power cycle: the board boots what was flashed.
    target.get_driver("PowerProtocol").cycle()
    shell = target.get_driver("ShellDriver")
    assert shell.run_check("grep BUILD_IMAGE /etc/build-info") == ["BUILD_IMAGE=twin-rkllm-1.3.0"]


def test_rest_power_model_drives_the_same_outlet(bench, tmp_path):
    """The outlet also speaks labgrid's `rest` model (PUT 1/0, GET state)."""
    env_file = tmp_path / "rest.yaml"
    env_file.write_text(
        "targets:\n  main:\n    resources:\n      NetworkPowerPort:\n        model: rest\n"
        f"        host: 'http://127.0.0.1:{bench.config.base_port}/outlet/{{index}}'\n        index: 1\n"
        "    drivers:\n      NetworkPowerDriver: {delay: 0.1}\n")
    target = Environment(str(env_file)).get_target("main")
    power = target.get_driver("PowerProtocol")
    power.off()
    assert power.get() is False and bench.board()["mode"] == "off"
    power.on()
    assert power.get() is True and bench.board()["mode"] in ("booting", "running")
    target.cleanup()
