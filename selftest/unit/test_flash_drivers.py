"""RKDeveloptoolDriver and UpgradeToolDriver: the commands they build and their runs against fake tools.

The fake ``rkdeveloptool`` / ``upgrade_tool`` are small scripts that print the real tools' strings
and record their arguments; environment variables choose the board they pretend to see and
which command fails. The loader resource is an ``RKUSBLoader`` marked available by hand, so
no USB device is needed.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from labgrid import Environment, Target
from labgrid.binding import BindingState
from labgrid.exceptions import NoResourceFoundError
from labgrid.resource import RKUSBLoader
from labgrid.resource.remote import NetworkRKUSBLoader, RemotePlaceManager
from labgrid.util.helper import processwrapper

import hil.lab.rkdeveloptool as rkdevmod
import hil.lab.upgradetool as upgrademod
from hil.lab import FlashProtocol, RKDeveloptoolDriver, UpgradeToolDriver
from hil.rockchip import flashtools as ft

FAKE_RKDEVELOPTOOL = r'''
import json, os, sys, time
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls"), "a") as f:
    f.write(json.dumps(args) + "\n")
out = sys.stdout
err, normal = "\x1b[30;41m", "\x1b[0m"
redraw = "\x1b[1A\x1b[2K"
fail = os.environ.get("FAKE_FAIL", "")
plugged = os.path.join(state, "devices")  # what is plugged in since the last command changed it
spec = open(plugged).read() if os.path.exists(plugged) else os.environ.get("FAKE_DEVICES", "350e:Maskrom:109")
devices = [d.split(":") for d in spec.split(",") if d]
cmd = args[0].lower() if args else ""
if cmd == "-v":
    out.write("rkdeveloptool ver 1.32\r\n"); sys.exit(0)
if cmd == "ld":
    if not devices:
        out.write("not found any devices!\r\n"); sys.exit(1)
    for i, (pid, mode, loc) in enumerate(devices):
        out.write(f"DevNo={i + 1}\tVid=0x2207,Pid=0x{pid},LocationID={loc}\t{mode}\r\n")
    sys.exit(0)
if not devices:
    out.write(f"{err}Did not find any rockusb device, please plug device in!{normal}\r\n"); sys.exit(1)
if len(devices) > 1:
    out.write(f"{err}Found too many rockusb devices, please plug devices out!{normal}\r\n"); sys.exit(1)
if cmd == "db":
    if not os.path.exists(args[1]):
        out.write(f"{err}Opening loader failed, exiting download boot!{normal}\r\n"); sys.exit(1)
    out.write("Downloading bootloader...\r\n")
    if fail == "db":
        out.write(f"{redraw}Downloading bootloader failed!\r\n"); sys.exit(1)
    out.write(f"{redraw}Downloading bootloader succeeded.\r\n"); sys.exit(0)
if cmd == "cs":
    if fail == "cs":
        out.write("Change Storage Fail!\r\n"); sys.exit(1)
    open(os.path.join(state, "storage"), "w").write(args[1])
    if os.environ.get("FAKE_PLUG_AFTER_CS"):  # another board enters loader mode on this host
        open(plugged, "w").write(os.environ["FAKE_PLUG_AFTER_CS"])
    out.write("Change Storage OK.\r\n"); sys.exit(0)
if cmd == "wl":
    if fail == "hang":
        time.sleep(30)
    try:
        data = open(args[2], "rb").read()
    except OSError as e:
        out.write(f"Write LBA failed, err={e.errno}, can't open file: {args[2]}\r\n"); sys.exit(1)
    out.write("Write LBA from file (27%)\r\n")
    if fail == "wl":
        out.write(f"{redraw}Write LBA from file (41%)\r\nWrite LBA failed!\r\n"); sys.exit(1)
    out.write(f"{redraw}Write LBA from file (79%)\r\n{redraw}Write LBA from file (100%)\r\n")
    open(os.path.join(state, "written"), "wb").write(data)
    sys.exit(0)
if cmd == "rd":
    if fail == "rd":
        out.write("Reset Device failed!\r\n"); sys.exit(1)
    out.write("Reset Device OK.\r\n"); sys.exit(0)
out.write("command is invalid!\r\n"); sys.exit(1)
'''

FAKE_UPGRADE_TOOL = r'''
import json, os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls"), "a") as f:
    f.write(json.dumps(args) + "\n")
out = sys.stdout
out.write("Using /opt/upgrade_tool/config.ini\r\nProgram Log will save in the /root/upgrade_tool/log/\r\n")
fail = os.environ.get("FAKE_FAIL", "")
devices = [d.split(":") for d in os.environ.get("FAKE_DEVICES", "350e:Maskrom:13").split(",") if d]
cmd = args[0].lower()
if cmd == "ld":
    out.write(f"List of rockusb connected({len(devices)})\r\n")
    for i, (pid, mode, loc) in enumerate(devices):
        out.write(f"DevNo={i + 1}\tVid=0x2207,Pid=0x{pid},LocationID={loc}\tMode={mode}\tSerialNo=\r\n")
    sys.exit(0)
if not devices:
    out.write("No found any rockusb device,please plug device in!\r\n"); sys.exit(1)
if cmd == "uf":
    out.write("Loading firmware...\r\nSupport Type:RK3576  FW Ver:1.0.00  FW Time:2025-01-02 03:04:05\r\n"
              "Loader ver:1.01 Loader Time:2025-01-02 03:04:05\r\nStart to upgrade firmware...\r\n")
    for stage in ("Download Boot", "Wait For Maskrom", "Test Device", "Check Chip", "Get FlashInfo",
                  "Prepare IDB", "Download IDB", "Download Firmware"):
        out.write(f"{stage} Start\r\n")
        if stage == "Download Firmware":
            out.write("Download Image... (45%)\r\n")
        if stage == fail:
            out.write(f"{stage} Fail\r\n"); sys.exit(1)
        if stage == "Download Firmware":
            out.write("Download Image... (100%)\r\n")
        out.write(f"{stage} Success\r\n")
    open(os.path.join(state, "written"), "wb").write(open(args[1], "rb").read())
    out.write("Upgrade firmware ok.\r\n"); sys.exit(0)
if cmd == "rd":
    out.write("Reset Device OK.\r\n"); sys.exit(0)
sys.exit(1)
'''


def install_fake(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def calls(state: Path) -> list[list[str]]:
    path = state / "calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def state(tmp_path, monkeypatch):
    directory = tmp_path / "state"
    directory.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(directory))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.delenv("FAKE_DEVICES", raising=False)
    return directory


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "rk3576 image.img"  # a space, to catch unquoted paths
    path.write_bytes(b"\x5a" * 4096)
    return path


def make_env(tmp_path: Path, driver_yaml: str, tool: str = "rkdeveloptool", tool_path: str | None = None) -> Target:
    """A target from an environment file, as the suite builds it, with the loader marked present."""
    fake = tool_path or str(install_fake(tmp_path / "bin", tool,
                                         FAKE_RKDEVELOPTOOL if tool == "rkdeveloptool" else FAKE_UPGRADE_TOOL))
    (tmp_path / "rk3576_spl_loader_v1.12.108.bin").write_bytes(b"LDR " + bytes(60))
    config = tmp_path / "env.yaml"
    config.write_text(textwrap.dedent(f"""\
        targets:
          main:
            resources:
              RKUSBLoader: {{match: {{ID_PATH: 'platform-fake-usb-0:9'}}}}
            drivers:
        {textwrap.indent(driver_yaml, ' ' * 6)}
        images:
          rk3576-loader: rk3576_spl_loader_v1.12.108.bin
        tools:
          {tool}: {fake}
        imports: [hil.lab]
        """))
    target = Environment(str(config)).get_target("main")
    target.get_resource(RKUSBLoader, wait_avail=False).avail = True
    return target


# --- rkdeveloptool, end to end against the fake --------------------------------------------
def test_flash_from_maskrom_downloads_loader_selects_emmc_writes_and_resets(tmp_path, state, image):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader, storage: emmc}")
    flash = target.get_driver(FlashProtocol)
    assert isinstance(flash, RKDeveloptoolDriver)
    assert flash.await_loader(timeout=5) == "Maskrom"
    flash.flash(str(image))
    flash.reset()
    loader = str(tmp_path / "rk3576_spl_loader_v1.12.108.bin")
    # ld again before the write: still the only rockusb device of the host, at this board's port
    assert calls(state) == [["ld"], ["ld"], ["db", loader], ["cs", "1"], ["ld"], ["wl", "0", str(image)], ["rd"]]
    assert (state / "written").read_bytes() == image.read_bytes()
    assert (state / "storage").read_text() == "1"


def test_loader_mode_skips_db_and_tool_is_found_on_path(tmp_path, state, image, monkeypatch):
    bindir = tmp_path / "bin"
    install_fake(bindir, "rkdeveloptool", FAKE_RKDEVELOPTOOL)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DEVICES", "350e:Loader:109")
    target = Target("bare")  # no environment: the tool is looked up on PATH
    loader = RKUSBLoader(target, "loader", match={"ID_PATH": "platform-fake-usb-0:9"})
    loader.avail = True
    flash = RKDeveloptoolDriver(target, "flash", storage="sd")
    assert flash.tool == "rkdeveloptool"
    target.activate(flash)
    assert flash.await_loader(timeout=5) == "Loader"
    flash.flash(str(image))
    assert calls(state) == [["ld"], ["ld"], ["cs", "2"], ["ld"], ["wl", "0", str(image)]]


def test_storage_none_writes_without_cs(tmp_path, state, image, monkeypatch):
    monkeypatch.setenv("FAKE_DEVICES", "350e:Loader:109")
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader, storage: null}")
    target.get_driver(FlashProtocol).flash(str(image))
    assert [c[0] for c in calls(state)] == ["ld", "ld", "wl"]


def test_a_second_board_in_loader_mode_before_the_write_stops_it(tmp_path, state, image, monkeypatch):
    """Checked again right before ``wl``: the write never goes to whichever board the tool picks."""
    monkeypatch.setenv("FAKE_DEVICES", "350e:Loader:109")
    monkeypatch.setenv("FAKE_PLUG_AFTER_CS", "350e:Loader:109,350e:Loader:10a")
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader, storage: emmc}")
    with pytest.raises(ft.TooManyDevices):
        target.get_driver(FlashProtocol).flash(str(image))
    assert [c[0] for c in calls(state)] == ["ld", "cs", "ld"], "no wl"
    assert not (state / "written").exists()


@pytest.mark.parametrize("fail, error, words", [
    ("db", ft.LoaderDownloadFailed, "rk3576_spl_loader"),
    ("cs", ft.StorageSelectFailed, "emmc"),
    ("wl", ft.WriteFailed, "at 41%"),
])
def test_a_failing_step_raises_its_cause_and_stops(tmp_path, state, image, monkeypatch, fail, error, words):
    monkeypatch.setenv("FAKE_FAIL", fail)
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader}")
    with pytest.raises(error, match=words) as e:
        target.get_driver(FlashProtocol).flash(str(image))
    assert e.value.output, "the tool's output travels with the error"
    assert [c[0] for c in calls(state)][-1] == fail  # nothing after the failed step
    assert not (state / "written").exists()


def test_reset_failure(tmp_path, state, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "rd")
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    with pytest.raises(ft.ResetFailed):
        target.get_driver(FlashProtocol).reset()


@pytest.mark.parametrize("devices, error, words", [
    ("", ft.NoLoaderDevice, "not in loader mode"),
    ("350b:Maskrom:109", ft.WrongSoC, "RK3588"),
    ("350e:Maskrom:109,350e:Maskrom:10a", ft.TooManyDevices, "one board per host"),
])
def test_the_board_on_the_cable_is_checked_before_anything_is_written(tmp_path, state, image, monkeypatch,
                                                                      devices, error, words):
    monkeypatch.setenv("FAKE_DEVICES", devices)
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader}")
    with pytest.raises(error, match=words):
        target.get_driver(FlashProtocol).flash(str(image))
    assert calls(state) == [["ld"]]


def test_device_at_another_port_is_refused(tmp_path, state, image, monkeypatch):
    monkeypatch.setattr(RKUSBLoader, "busnum", property(lambda self: 1))
    monkeypatch.setattr(RKUSBLoader, "path", property(lambda self: "1-3.2"))
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader}")
    with pytest.raises(ft.WrongDevice, match="bus 1 port 9"):
        target.get_driver(FlashProtocol).flash(str(image))
    monkeypatch.setattr(RKUSBLoader, "path", property(lambda self: "1-3.9"))
    target.get_driver(FlashProtocol).flash(str(image))
    assert (state / "written").exists()


def test_maskrom_without_loader_image_says_what_to_set(tmp_path, state, image):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    with pytest.raises(ft.WrongMode, match="loader_image"):
        target.get_driver(FlashProtocol).flash(str(image))


def test_missing_tool(tmp_path, state, image):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}", tool_path=str(tmp_path / "nowhere" / "rkdeveloptool"))
    with pytest.raises(ft.ToolMissing, match="tools:"):
        target.get_driver(FlashProtocol).await_loader(timeout=1)


def test_stalled_write_is_stopped_by_the_timeout(tmp_path, state, image, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "hang")
    monkeypatch.setenv("FAKE_DEVICES", "350e:Loader:109")
    target = make_env(tmp_path, "RKDeveloptoolDriver: {timeout: 1.5}")
    started = time.monotonic()
    with pytest.raises(ft.ToolTimeout, match="stalled"):
        target.get_driver(FlashProtocol).flash(str(image))
    assert time.monotonic() - started < 15


def test_version(tmp_path, state):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    assert target.get_driver(RKDeveloptoolDriver).version() == "1.32"


def test_await_loader_times_out_when_the_board_never_enumerates(tmp_path, state):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    flash = target.get_driver(FlashProtocol)
    target.get_resource(RKUSBLoader, wait_avail=False).avail = False
    started = time.monotonic()
    with pytest.raises(ft.LoaderTimeout, match="not in loader mode") as e:
        flash.await_loader(timeout=0.5)
    assert isinstance(e.value, TimeoutError) and isinstance(e.value.__cause__, NoResourceFoundError)
    assert time.monotonic() - started < 5
    assert calls(state) == []


def test_await_loader_survives_labgrid_deactivating_it_while_the_board_was_away(tmp_path, state):
    """labgrid deactivates drivers whose managed resource disappears; await_loader re-activates."""
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    flash = target.get_driver(FlashProtocol)
    loader = target.get_resource(RKUSBLoader, wait_avail=False)
    loader.avail = False  # the board rebooted out of loader mode
    time.sleep(0.2)  # past labgrid's 0.1 s rate limit, so the next resource update sees it gone
    threading.Timer(0.6, lambda: setattr(loader, "avail", True)).start()
    assert flash.await_loader(timeout=10) == "Maskrom"
    assert flash.state is BindingState.active
    assert loader.state is BindingState.active


def test_methods_need_an_active_driver(tmp_path, state):
    target = make_env(tmp_path, "RKDeveloptoolDriver: {}")
    flash = target.get_driver(FlashProtocol, activate=False)
    from labgrid.binding import StateError
    with pytest.raises(StateError):
        flash.reset()


def test_userdata_note(tmp_path, state, caplog):
    from selftest.unit.test_flashtools import gpt_head
    img = tmp_path / "gpt.img"
    img.write_bytes(gpt_head({"rootfs": (64, 99), "userdata": (100, 199)}) + bytes(200 * 512))
    target = make_env(tmp_path, "RKDeveloptoolDriver: {loader_image: rk3576-loader}")
    flash = target.get_driver(FlashProtocol)
    with caplog.at_level("INFO"):
        flash.flash(str(img), wipe_userdata=False)
    assert "not kept" in caplog.text


# --- argument lists through an exporter ------------------------------------------------------
class FakeManagedFile:
    """ManagedFile without scp: the remote path is where labgrid's cache would put it."""

    synced: list[str] = []

    def __init__(self, local_path, resource):
        self.local_path, self.resource = str(local_path), resource

    def sync_to_resource(self, symlink=None):
        FakeManagedFile.synced.append(self.local_path)

    def get_remote_path(self):
        return f"/var/cache/labgrid/ci/0123abcd/{os.path.basename(self.local_path)}"


def test_remote_loader_commands_go_through_ssh_quoted(tmp_path, image, monkeypatch):
    monkeypatch.setattr(NetworkRKUSBLoader, "command_prefix", property(lambda self: ["ssh", self.host, "--"]))
    monkeypatch.setattr(RemotePlaceManager, "poll", lambda self: None)
    monkeypatch.setattr(rkdevmod, "ManagedFile", FakeManagedFile)
    FakeManagedFile.synced = []
    ran = []
    replies = {"ld": b"DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109\tMaskrom\n",
               "db": b"Downloading bootloader succeeded.\n", "cs": b"Change Storage OK.\n",
               "wl": b"Write LBA from file (100%)\n", "rd": b"Reset Device OK.\n"}

    def check_output(command, *, print_on_silent_log=False, input=None, stdin=None):
        ran.append(command)
        return replies[command[7]]

    monkeypatch.setattr(processwrapper, "check_output", check_output)
    (tmp_path / "rk3576_spl_loader_v1.12.108.bin").write_bytes(b"LDR ")
    config = tmp_path / "env.yaml"
    config.write_text(textwrap.dedent("""\
        targets:
          main:
            resources:
              NetworkRKUSBLoader: {host: exporter1, busnum: 1, devnum: 7, path: '1-9',
                                   vendor_id: 0x2207, model_id: 0x350e}
            drivers:
              RKDeveloptoolDriver: {loader_image: rk3576-loader, storage: spinor, timeout: 900}
        images:
          rk3576-loader: rk3576_spl_loader_v1.12.108.bin
        tools:
          rkdeveloptool: /opt/rk/rkdeveloptool
        """))
    target = Environment(str(config)).get_target("main")
    target.get_resource(NetworkRKUSBLoader, wait_avail=False).avail = True
    flash = target.get_driver(FlashProtocol)
    flash.flash(str(image))
    flash.reset()
    prefix = ["ssh", "exporter1", "--", "timeout", "--kill-after=10"]
    tool = "/opt/rk/rkdeveloptool"
    cache = "/var/cache/labgrid/ci/0123abcd"
    assert ran == [
        prefix + ["60", tool, "ld"],
        prefix + ["900", tool, "db", f"{cache}/rk3576_spl_loader_v1.12.108.bin"],
        prefix + ["60", tool, "cs", "9"],
        prefix + ["60", tool, "ld"],
        prefix + ["900", tool, "wl", "0", f"'{cache}/rk3576 image.img'"],
        prefix + ["60", tool, "rd"],
    ]
    assert FakeManagedFile.synced == [str(image), str(tmp_path / "rk3576_spl_loader_v1.12.108.bin")]


def test_driver_needs_the_loader_binding():
    target = Target("unbound")
    with pytest.raises(Exception, match="RKUSBLoader"):
        RKDeveloptoolDriver(target, "flash")


# --- upgrade_tool ------------------------------------------------------------------------------
def test_upgrade_tool_flashes_with_uf_and_does_not_reset_twice(tmp_path, state, image):
    target = make_env(tmp_path, "UpgradeToolDriver: {}", tool="upgrade_tool")
    flash = target.get_driver(FlashProtocol)
    assert isinstance(flash, UpgradeToolDriver)
    assert flash.await_loader(timeout=5) == "Maskrom"
    flash.flash(str(image))
    flash.reset()  # uf has reset the board
    assert calls(state) == [["ld"], ["ld"], ["uf", str(image)]]
    assert (state / "written").read_bytes() == image.read_bytes()
    flash.reset()  # a later reset is a real rd
    assert calls(state)[-1] == ["rd"]


def test_upgrade_tool_stage_failure(tmp_path, state, image, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "Check Chip")
    target = make_env(tmp_path, "UpgradeToolDriver: {}", tool="upgrade_tool")
    flash = target.get_driver(FlashProtocol)
    with pytest.raises(ft.UpgradeFailed, match="another SoC") as e:
        flash.flash(str(image))
    assert e.value.stage == "Check Chip"
    monkeypatch.setenv("FAKE_FAIL", "Download Firmware")
    with pytest.raises(ft.UpgradeFailed, match="at 45%"):
        flash.flash(str(image))


@pytest.mark.parametrize("devices, error", [
    ("", ft.NoLoaderDevice), ("350a:Loader:13", ft.WrongSoC), ("350e:Loader:13,350e:Loader:14", ft.TooManyDevices),
])
def test_upgrade_tool_checks_the_board_before_uf(tmp_path, state, image, monkeypatch, devices, error):
    monkeypatch.setenv("FAKE_DEVICES", devices)
    target = make_env(tmp_path, "UpgradeToolDriver: {}", tool="upgrade_tool")
    with pytest.raises(error):
        target.get_driver(FlashProtocol).flash(str(image))
    assert calls(state) == [["ld"]]


def test_upgrade_tool_remote_arguments(tmp_path, image, monkeypatch):
    monkeypatch.setattr(NetworkRKUSBLoader, "command_prefix", property(lambda self: ["ssh", self.host, "--"]))
    monkeypatch.setattr(RemotePlaceManager, "poll", lambda self: None)
    monkeypatch.setattr(upgrademod, "ManagedFile", FakeManagedFile)
    ran = []

    def check_output(command, **kwargs):
        ran.append(command)
        if command[-1] == "ld":
            return (b"List of rockusb connected(1)\n"
                    b"DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=13\tMode=Loader\tSerialNo=\n")
        return b"Download Firmware Success\nUpgrade firmware ok.\n"

    monkeypatch.setattr(processwrapper, "check_output", check_output)
    target = Target("remote")
    loader = NetworkRKUSBLoader(target, "loader", host="exporter2", busnum=3, devnum=4, path="3-1",
                                vendor_id=0x2207, model_id=0x350E)
    loader.avail = True
    flash = UpgradeToolDriver(target, "flash", timeout=0)
    target.activate(flash)
    flash.flash(str(image))
    prefix = ["ssh", "exporter2", "--", "upgrade_tool"]  # timeout 0: no coreutils timeout wrapper
    assert ran == [prefix + ["ld"], prefix + ["uf", "'/var/cache/labgrid/ci/0123abcd/rk3576 image.img'"]]


# --- upgrade_tool: which device uf would take ---------------------------------------------------
# upgrade_tool's own ld output (rockchip.md, section 8), one device and none
LD_ONE = ("List of rockusb connected(1)\r\n"
          "DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=13\tMode=Maskrom\tSerialNo=\r\n")
LD_NONE = "List of rockusb connected(0)\r\n"


def test_upgrade_tool_ld_header_and_lines_parse_from_the_real_strings():
    assert upgrademod.listed_count(LD_ONE) == 1 and upgrademod.listed_count(LD_NONE) == 0
    assert upgrademod.listed_count("Program Log will save in the /root/upgrade_tool/log/\n") is None
    [device] = ft.parse_ld(LD_ONE)
    assert (device.usb_id, device.location, device.mode, device.serial) == ("2207:350e", "13", "Maskrom", "")
    assert ft.parse_ld(LD_NONE) == []
    upgrademod.check_one_device(LD_ONE, ft.parse_ld(LD_ONE))  # one counted, one read: fine


def test_upgrade_tool_refuses_when_it_counts_a_device_it_could_not_read():
    """Two counted, one line understood: uf would take either, so nothing is flashed."""
    output = LD_ONE.replace("connected(1)", "connected(2)") + "DevNo=2\tVid=0x2207,Pid=0x350e\tMode=Loader\r\n"
    devices = ft.parse_ld(output)
    assert len(devices) == 1
    with pytest.raises(ft.TooManyDevices, match="lists 2 rockusb devices .1 of them readable.*one board per host"):
        upgrademod.check_one_device(output, devices)


def test_upgrade_tool_refuses_a_device_when_this_boards_loader_port_shows_none(tmp_path, state, image,
                                                                                monkeypatch):
    """The one device upgrade_tool sees is another board's when this target's loader resource is absent."""
    target = make_env(tmp_path, "UpgradeToolDriver: {}", tool="upgrade_tool")
    flash = target.get_driver(FlashProtocol)
    loader = target.get_resource(RKUSBLoader, wait_avail=False)
    monkeypatch.setattr(loader, "poll", lambda: setattr(loader, "avail", False))  # port empty on the next look
    with pytest.raises(ft.WrongDevice, match="LocationID 13.*another board on this host"):
        flash.flash(str(image))
    assert calls(state) == [["ld"]]  # no uf
    assert not (state / "written").exists()


def test_upgrade_tool_two_boards_in_loader_mode_flashes_neither(tmp_path, state, image, monkeypatch):
    monkeypatch.setenv("FAKE_DEVICES", "350e:Maskrom:13,350e:Loader:143")
    target = make_env(tmp_path, "UpgradeToolDriver: {}", tool="upgrade_tool")
    with pytest.raises(ft.TooManyDevices, match="LocationID 13.*LocationID 143.*one board per host"):
        target.get_driver(FlashProtocol).flash(str(image))
    assert calls(state) == [["ld"]]


# --- the twin's flash driver fails like the real ones ---------------------------------------------
class BenchStub:
    """The bench's flash service for one board: fixed replies per (method, path), as the bench words them."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.replies: dict[tuple[str, str], tuple[int, str]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                code, body = stub.replies.get((self.command, self.path.split("?")[0]), (404, "no such endpoint\n"))
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bench_stub():
    stub = BenchStub()
    yield stub
    stub.close()


def twin_flasher(url: str):
    from hil.lab import TwinFlashDriver, TwinUSBLoader

    target = Target("twin")
    TwinUSBLoader(target, "loader", url=url, index=1)
    flash = TwinFlashDriver(target, "flash", request_timeout=5.0)
    target.activate(flash)
    return flash


LOADER_PRESENT = json.dumps({"present": True, "mode": "Loader", "loader_ready": True, "vid": "0x2207", "pid": "0x350e"})
NOT_PRESENT = json.dumps({"present": False, "mode": None, "loader_ready": False, "vid": "0x2207", "pid": "0x350e"})


@pytest.mark.parametrize("reply, error, words", [
    ((409, "board 1 is not in loader mode (no rockusb device): enter it with 'reboot loader' on the board or the "
           "maskrom button and a power cycle\n"), ft.NoLoaderDevice, "not in loader mode.*hold MASKROM"),
    ((400, "upload-x: image is corrupt: Image does not match its SHA256\n"), ft.WriteFailed,
     "refused the image, nothing was written: .*corrupt.*hil twin build"),
    ((409, "board 1 is in maskrom: download the loader (db) before writing\n"), ft.WrongMode, "download the loader"),
])
def test_twin_flash_refusals_are_flash_tool_errors(bench_stub, image, reply, error, words):
    bench_stub.replies[("GET", "/usb/1")] = (200, LOADER_PRESENT)
    bench_stub.replies[("PUT", "/usb/1/image")] = reply
    with pytest.raises(error, match=words):
        twin_flasher(bench_stub.url).flash(str(image))


def test_twin_reset_refusal_and_missing_device_are_flash_tool_errors(bench_stub, image):
    bench_stub.replies[("POST", "/usb/1/reset")] = (500, "QEMU did not start\n")
    flash = twin_flasher(bench_stub.url)
    with pytest.raises(ft.ResetFailed, match="did not accept the reset: QEMU did not start"):
        flash.reset()
    bench_stub.replies[("GET", "/usb/1")] = (200, NOT_PRESENT)
    with pytest.raises(ft.NoLoaderDevice, match="not in loader mode"):
        flash.flash(str(image))
    with pytest.raises(ft.LoaderTimeout, match="within 0.3 s") as e:
        flash.await_loader(timeout=0.3)
    assert isinstance(e.value, TimeoutError), "still a TimeoutError for callers that wait"


def test_twin_flash_service_unreachable_names_the_remedy_and_keeps_the_cause():
    import socket

    import requests

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ft.ToolMissing, match="did not answer GET state.*hil twin up") as e:
        twin_flasher(url).device()
    assert isinstance(e.value, ft.FlashToolError)
    assert isinstance(e.value.__cause__, requests.ConnectionError)
