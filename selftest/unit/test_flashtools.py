"""Parsers and argument builders for rkdeveloptool and upgrade_tool, against the tools' exact output, and
``hil parse flash-tool`` on real transcripts from public threads (named at each)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.rockchip import flashtools as ft

ERR, NORMAL = "\x1b[30;41m", "\x1b[0m"  # rkdeveloptool's ERROR_COLOR_ATTR / NORMAL_COLOR_ATTR
REDRAW = "\x1b[1A\x1b[2K"  # CURSOR_MOVEUP_LINE(1); CURSOR_DEL_LINE


def error_line(text: str) -> str:
    return f"{ERR}{text}{NORMAL}\r\n"


# --- ld ----------------------------------------------------------------------------------
def test_ld_maskrom_and_loader_lines():
    out = "DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109\tMaskrom\r\n"
    (dev,) = ft.parse_ld(out)
    assert (dev.devno, dev.vid, dev.pid, dev.location, dev.mode) == (1, 0x2207, 0x350E, "109", "Maskrom")
    assert dev.soc == "RK3576" and dev.bus_port() == (1, 9)
    assert ft.select_rk3576([dev]) is dev

    (dev,) = ft.parse_ld("DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=10c\tLoader\r\n")
    assert dev.mode == "Loader" and dev.bus_port() == (1, 12)


def test_ld_as_processwrapper_returns_it():
    # processwrapper splits on \r and joins with \n: bytes, doubled line ends
    out = b"DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=201\tMaskrom\n"
    assert ft.parse_ld(out)[0].bus_port() == (2, 1)


def test_clean_decodes_and_keeps_each_progress_state_on_a_line_of_its_own():
    out = f"Write LBA from file (27%)\r\r\n{REDRAW}Write LBA from file (100%)  \r\n".encode()
    assert ft.clean(out) == "Write LBA from file (27%)\nWrite LBA from file (100%)\n"


def test_ld_no_device_is_an_empty_list_and_selecting_says_what_to_do():
    assert ft.parse_ld("not found any devices!\r\n") == []
    with pytest.raises(ft.NoLoaderDevice) as e:
        ft.select_rk3576([])
    msg = str(e.value)
    assert "not in loader mode" in msg and "MASKROM" in msg and "relay" in msg and "USB cable" in msg


def test_ld_garbage_is_not_mistaken_for_no_device():
    with pytest.raises(ft.ToolFailed, match="neither devices"):
        ft.parse_ld("Usage: something else\n")


@pytest.mark.parametrize("pid, soc", [("350b", "RK3588"), ("350a", "RK3566/RK3568")])
def test_wrong_pid_names_the_soc_on_the_cable(pid, soc):
    devices = ft.parse_ld(f"DevNo=1\tVid=0x2207,Pid=0x{pid},LocationID=102\tMaskrom\r\n")
    with pytest.raises(ft.WrongSoC) as e:
        ft.select_rk3576(devices)
    assert soc in str(e.value) and "not an RK3576" in str(e.value) and "2207:350e" in str(e.value)


def test_two_devices_are_refused_because_the_tool_cannot_choose():
    out = ("DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109\tMaskrom\r\n"
           "DevNo=2\tVid=0x2207,Pid=0x350e,LocationID=10a\tLoader\r\n")
    with pytest.raises(ft.TooManyDevices, match="one board per host"):
        ft.select_rk3576(ft.parse_ld(out))


def test_upgrade_tool_ld():
    out = ("Using /opt/upgrade_tool/config.ini\r\n"
           "Program Log will save in the /root/upgrade_tool/log/\r\n"
           "List of rockusb connected(1)\r\n"
           "DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=13\tMode=Maskrom\tSerialNo=\r\n")
    (dev,) = ft.parse_ld(out)
    assert (dev.pid, dev.location, dev.mode, dev.serial) == (0x350E, "13", "Maskrom", "")
    assert ft.parse_ld("List of rockusb connected(0)\r\n") == []
    assert ft.parse_ld("No found any rockusb device,please plug device in!\r\n") == []


@pytest.mark.parametrize("busnum, path, ok", [
    (1, "1-9", True), (1, "1-3.9", True), (1, "1-3.2", False), (2, "2-9", False), (None, None, True),
])
def test_location_must_match_the_loader_resource(busnum, path, ok):
    (dev,) = ft.parse_ld("DevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109\tMaskrom\r\n")
    if ok:
        ft.check_location(dev, busnum, path)
    else:
        with pytest.raises(ft.WrongDevice, match="another board"):
            ft.check_location(dev, busnum, path)


# --- argument lists ----------------------------------------------------------------------
def test_argument_lists():
    assert ft.ld_args() == ["ld"]
    assert ft.version_args() == ["-v"]
    assert ft.db_args("/l/rk3576_spl_loader_v1.12.108.bin") == ["db", "/l/rk3576_spl_loader_v1.12.108.bin"]
    assert [ft.cs_args(s) for s in ("emmc", "sd", "spinor")] == [["cs", "1"], ["cs", "2"], ["cs", "9"]]
    assert ft.wl_args("/img/a.img") == ["wl", "0", "/img/a.img"]
    assert ft.rd_args() == ["rd"]
    assert ft.uf_args("/img/update.img") == ["uf", "/img/update.img"]
    with pytest.raises(ValueError, match="emmc"):
        ft.cs_args("nand")


# --- db / cs / rd / -v -------------------------------------------------------------------
def test_db_success_after_redraw():
    ft.check_db(f"Downloading bootloader...\r\n{REDRAW}Downloading bootloader succeeded.\r\n")


def test_db_rejected_loader_names_the_wrong_file():
    with pytest.raises(ft.LoaderDownloadFailed) as e:
        ft.check_db(f"Downloading bootloader...\r\n{REDRAW}Downloading bootloader failed!\r\n", "/x/rk3588_loader.bin")
    assert "/x/rk3588_loader.bin" in str(e.value) and "rk3576_spl_loader" in str(e.value)
    assert "Downloading bootloader failed!" in e.value.output


def test_db_unreadable_loader():
    with pytest.raises(ft.LoaderFileError, match="not a packed loader"):
        ft.check_db(error_line("Opening loader failed, exiting download boot!"), "idbloader.img")


@pytest.mark.parametrize("text", ["The device does not support this operation!",
                                  "The  Device did not support this operation!"])
def test_db_in_loader_mode(text):
    with pytest.raises(ft.WrongMode, match="Loader mode"):
        ft.check_db(error_line(text))


def test_storage_command_without_device_and_with_two():
    with pytest.raises(ft.NoLoaderDevice, match="not in loader mode"):
        ft.check_cs(error_line("Did not find any rockusb device, please plug device in!"), "emmc")
    with pytest.raises(ft.TooManyDevices):
        ft.check_wl(error_line("Found too many rockusb devices, please plug devices out!"))


def test_comm_object_failure_points_at_permissions():
    with pytest.raises(ft.UsbAccessError, match="udev"):
        ft.check_db(error_line("Creating Comm Object failed!"))
    with pytest.raises(ft.UsbAccessError):
        ft.check_wl("Write LBA quit, creating comm object failed!\r\n")


def test_cs():
    ft.check_cs("Change Storage OK.\r\n", "emmc")
    with pytest.raises(ft.StorageSelectFailed, match="cs 9"):
        ft.check_cs("Change Storage Fail!\r\n", "spinor")
    with pytest.raises(ft.WrongMode, match="db"):
        ft.check_cs(error_line("The device does not support this operation!"), "emmc")


def test_rd():
    ft.check_rd("Reset Device OK.\r\n")
    with pytest.raises(ft.ResetFailed, match="power-cycle"):
        ft.check_rd("Reset Device failed!\r\n")
    with pytest.raises(ft.ToolFailed):
        ft.check_rd("")


def test_version():
    assert ft.parse_version("rkdeveloptool ver 1.32\r\n") == "1.32"
    with pytest.raises(ft.ToolFailed):
        ft.parse_version("upgrade_tool v2.17\r\n")


# --- wl ----------------------------------------------------------------------------------
WL_OK = ("Write LBA from file (27%)\r\n"
         f"{REDRAW}Write LBA from file (79%)\r\n"
         f"{REDRAW}Write LBA from file (100%)\r\n")


def test_wl_progress_to_100_is_success():
    assert ft.write_progress(WL_OK) == 100
    ft.check_wl(WL_OK)


def test_wl_failure_mid_write_says_where():
    out = f"Write LBA from file (27%)\r\n{REDRAW}Write LBA from file (41%)\r\nWrite LBA failed!\r\n"
    with pytest.raises(ft.WriteFailed, match="at 41%") as e:
        ft.check_wl(out)
    assert "USB" in str(e.value)


def test_wl_output_that_stops_short_is_a_failure():
    with pytest.raises(ft.WriteFailed, match="at 79%"):
        ft.check_wl(f"Write LBA from file (27%)\r\n{REDRAW}Write LBA from file (79%)\r\n")


def test_wl_cannot_open_file():
    out = "Write LBA failed, err=2, can't open file: /var/cache/labgrid/ci/0a1b/rk3576.img\r\n"
    with pytest.raises(ft.ImageOpenFailed) as e:
        ft.check_wl(out)
    assert "/var/cache/labgrid/ci/0a1b/rk3576.img" in str(e.value) and "errno 2" in str(e.value)
    assert "missing" in str(e.value)


def test_wl_without_progress_is_not_success():
    with pytest.raises(ft.ToolFailed, match="no progress"):
        ft.check_wl("")


def test_error_message_keeps_the_tail_of_the_output():
    with pytest.raises(ft.WriteFailed) as e:
        ft.check_wl("x" * 5000 + "\r\nWrite LBA failed!\r\n")
    assert str(e.value).endswith("Write LBA failed!")
    assert len(str(e.value)) < 2000


# --- upgrade_tool uf ---------------------------------------------------------------------
UF_OK = """Program Log will save in the /root/upgrade_tool/log/
Loading firmware...
Support Type:RK3576  FW Ver:1.0.00  FW Time:2025-01-02 03:04:05
Loader ver:1.01 Loader Time:2025-01-02 03:04:05
Start to upgrade firmware...
Download Boot Start
Download Boot Success
Wait For Maskrom Start
Wait For Maskrom Success
Test Device Start
Test Device Success
Check Chip Start
Check Chip Success
Get FlashInfo Start
Get FlashInfo Success
Prepare IDB Start
Prepare IDB Success
Download IDB Start
Download IDB Success
Download Firmware Start
Download Image... (100%)
Download Firmware Success
Upgrade firmware ok.
""".replace("\n", "\r\n")


def test_uf_success():
    ft.check_uf(UF_OK)
    stages = ft.uf_stages(UF_OK)
    assert stages[0] == ("Download Boot", "Start") and stages[-1] == ("Download Firmware", "Success")
    assert len(stages) == 16


def test_uf_stage_failure_names_the_stage_and_cause():
    out = UF_OK.split("Check Chip Success")[0] + "Check Chip Fail\r\n"
    with pytest.raises(ft.UpgradeFailed, match="another SoC") as e:
        ft.check_uf(out)
    assert e.value.stage == "Check Chip"


def test_uf_write_failure_says_how_far():
    out = UF_OK.split("Download Image... (100%)")[0] + "Download Image... (45%)\r\nDownload Firmware Fail\r\n"
    with pytest.raises(ft.UpgradeFailed, match="at 45%") as e:
        ft.check_uf(out)
    assert e.value.stage == "Download Firmware"


def test_uf_interrupted_without_marker():
    out = UF_OK.split("Download Firmware Start")[0]
    with pytest.raises(ft.UpgradeFailed, match="without 'Upgrade firmware ok.'") as e:
        ft.check_uf(out)
    assert e.value.stage == "Download IDB"


def test_uf_without_device():
    with pytest.raises(ft.NoLoaderDevice):
        ft.check_uf("No found any rockusb device,please plug device in!\r\n")


# --- GPT and userdata ------------------------------------------------------------------
def gpt_head(partitions: dict[str, tuple[int, int]]) -> bytes:
    """LBA 0..33 of a GPT disk with the given partitions (name -> first, last LBA)."""
    head = bytearray(34 * 512)
    header = bytearray(92)
    header[:8] = b"EFI PART"
    struct.pack_into("<QII", header, 72, 2, 128, 128)
    head[512:512 + 92] = header
    for i, (name, (first, last)) in enumerate(partitions.items()):
        entry = bytearray(128)
        entry[:16] = b"\x01" * 16  # any non-zero type GUID
        struct.pack_into("<QQ", entry, 32, first, last)
        label = name.encode("utf-16-le")
        entry[56:56 + len(label)] = label
        head[1024 + i * 128:1024 + (i + 1) * 128] = entry
    return bytes(head)


def test_gpt_partition_lookup():
    head = gpt_head({"uboot": (16384, 24575), "rootfs": (65536, 999999), "userdata": (1000000, 2000000)})
    assert ft.gpt_partition(head, "userdata") == (1000000, 2000000)
    assert ft.gpt_partition(head, "misc") is None
    assert ft.gpt_partition(bytes(34 * 512), "userdata") is None


def test_userdata_fate():
    head = gpt_head({"rootfs": (65536, 999999), "userdata": (1000000, 2000000)})
    assert ft.userdata_fate(head, 2000001 * 512) == "overwritten"
    assert ft.userdata_fate(head, 1000000 * 512) == "kept"
    assert ft.userdata_fate(b"\0" * 100, 10 ** 9) == "unknown"


# --- transcripts as users paste them (hil parse flash-tool), from public threads -----------------
# Each is quoted as it was pasted (tabs as in the source); the thread is named above it. The same
# reader serves the drivers' checks, so some of them also go through check_* and parse_ld.

# zarhus/docs, docs/supported-targets/radxa-cm3.md (Radxa CM3, RK3566): a whole flash, the code
# blocks one after another, with the lsusb and wget the page runs between them.
ZARHUS_CM3_FLASH = """\
lsusb | grep '350a'
Bus 003 Device 007: ID 2207:350a Fuzhou Rockchip Electronics Company
rkdeveloptool ld
DevNo=1\tVid=0x2207,Pid=0x350a,LocationID=303\tMaskrom
wget https://dl.radxa.com/rock3/images/loader/radxa-cm3-io/rk356x_spl_loader_ddr1056_v1.10.111.bin
rkdeveloptool db rk356x_spl_loader_ddr1056_v1.10.111.bin
Downloading bootloader succeeded.
rkdeveloptool wl 0x0 zarhus-base-image-IMAGE_VER-zarhus-machine-cm3.rootfs.wic
Write LBA from file (100%)
rkdeveloptool rd
Reset Device OK.
"""


def test_transcript_of_a_good_rkdeveloptool_flash():
    out = ft.parse_transcript(ZARHUS_CM3_FLASH)
    assert out == {"tool": "rkdeveloptool",
                   "devices": [{"vid": "0x2207", "pid": "0x350a", "location": "303", "mode": "Maskrom"}],
                   "failures": [], "ok": True}
    steps = ft.read_transcript(ZARHUS_CM3_FLASH)
    assert [(s.command, s.ok) for s in steps if s.tool] == [("ld", True), ("db", True), ("wl", True), ("rd", True)]


# NixOS wiki, "NixOS on ARM/Radxa ROCK 5 ITX": nix-shell prompts, and rd pasted without its output.
NIXOS_ROCK5ITX = """\
``` bash
 > nix-shell -p rkdeveloptool

[nix-shell:~/rk3588]$ sudo rkdeveloptool db rk3588_spl_loader_v1.15.113.bin
Downloading bootloader succeeded.

[nix-shell:~/rk3588]$ sudo rkdeveloptool wl 0 rock-5itx_UEFI_Release_v0.11.2.img
Write LBA from file (100%)

[nix-shell:~/rk3588]$ sudo rkdeveloptool rd
```
"""


def test_transcript_whose_last_operation_says_nothing_is_undecided():
    out = ft.parse_transcript(NIXOS_ROCK5ITX)
    assert out == {"tool": "rkdeveloptool", "devices": [], "failures": [], "ok": None}
    assert [(s.command, s.ok) for s in ft.read_transcript(NIXOS_ROCK5ITX)] == [
        (None, None), ("db", True), ("wl", True), ("rd", None)]  # the nix-shell line is not the tool's


# ld: the RK3576 itself in both modes (radxa-docs/docs, docs/rock4/rock4d/hardware-use/maskrom.md and
# recovery.md: ROCK 4D, mode after a blank), rockchip-linux/rkdeveloptool#91 (RK3588 in Loader, ld twice
# around an rd 3 that printed nothing), rockchip-linux/tools#21 and JeffyCN/meta-rockchip#29
# (upgrade_tool's start-up scan, Mode=Loader / Mode=Maskrom, then its DevNo prompt).
ROCK4D_MASKROM = "sudo rkdeveloptool ld\nDevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109 Maskrom\n"
ROCK4D_LOADER = "sudo rkdeveloptool ld\nDevNo=1\tVid=0x2207,Pid=0x350e,LocationID=109 Loader\n"
RKDEV_91 = """\
rkdeveloptool ld
DevNo=1\tVid=0x2207,Pid=0x350b,LocationID=107\tLoader
sudo rkdeveloptool rd 3
rkdeveloptool ld
DevNo=1\tVid=0x2207,Pid=0x350b,LocationID=107\tLoader
"""
TOOLS_21_LD = """\
List of rockusb connected
DevNo=1\tVid=0x2207,Pid=0x330a,LocationID=11\tMode=Loader
Found 1 rockusb,Select input DevNo,Rescan press <R>,Quit press <Q>:1
"""
META_ROCKCHIP_29 = """\
sudo ~/bin/upgrade_tool
Not found config.ini
Program Data in /home/pete/bin
List of rockusb connected
DevNo=1\tVid=0x2207,Pid=0x330c,LocationID=301\tMode=Maskrom
Found 1 rockusb,Select input DevNo,Rescan press <R>,Quit press <Q>:
sudo ~/bin/upgrade_tool wl 0 core-image-minimal-rockchip-rk3399-icg-200-20220809000634.rootfs.wic
Not found config.ini
Program Data in /home/pete/bin
Write LBA failed!
"""


@pytest.mark.parametrize("text, tool, pid, location, mode, ok", [
    (ROCK4D_MASKROM, "rkdeveloptool", "0x350e", "109", "Maskrom", True),
    (ROCK4D_LOADER, "rkdeveloptool", "0x350e", "109", "Loader", True),
    (RKDEV_91, "rkdeveloptool", "0x350b", "107", "Loader", None),  # the last operation, rd 3, said nothing
    (TOOLS_21_LD, "upgrade_tool", "0x330a", "11", "Loader", True),
    (META_ROCKCHIP_29, "upgrade_tool", "0x330c", "301", "Maskrom", False),  # its wl failed afterwards
])
def test_transcript_lists_maskrom_and_loader_devices(text, tool, pid, location, mode, ok):
    out = ft.parse_transcript(text)
    assert out["tool"] == tool and out["ok"] is ok
    assert out["devices"] == [{"vid": "0x2207", "pid": pid, "location": location, "mode": mode}]  # once each


def test_the_drivers_ld_parser_reads_the_rk3576_in_both_modes():
    (maskrom,) = ft.parse_ld(ROCK4D_MASKROM.split("\n", 1)[1])
    (loader,) = ft.parse_ld(ROCK4D_LOADER.split("\n", 1)[1])
    assert (maskrom.soc, maskrom.mode, loader.mode, loader.bus_port()) == ("RK3576", "Maskrom", "Loader", (1, 9))
    assert ft.select_rk3576([loader]) is loader


# rockchip-linux/rkdeveloptool#32 (RK3399 board not in rockusb mode): ld's own answer, pasted alone.
RKDEV_32 = "not found any devices!\n"
# gaochengsi/doc, _posts/start/2015-07-20-unbrick-rock.md (Radxa Rock): upgrade_tool's interactive scan,
# first nothing, then a rescan (r) finds the board; uf at the Rockusb> prompt, cut off after its first line.
RADXA_ROCK_UNBRICK = """\
> sudo upgrade_tool  
   List of rockusb connected  
   No found rockusb,Rescan press <R>,Quit press :r  
   List of rockusb connected  
   DevNo=1\tVid=0x2207,Pid=0x310b,LocationID=21f\t   **Maskrom**  
   Found 1 rockusb,Select input DevNo,Rescan press <R>,Quit press :1  
   Rockusb>uf /tmp/radxa-rock-alip-desktop.img  
   Loading firmware...  
"""


def test_not_found_any_devices():
    assert ft.parse_transcript(RKDEV_32) == {
        "tool": "rkdeveloptool", "devices": [], "failures": [{"command": "ld", "words": "not found any devices!"}],
        "ok": False}
    assert ft.parse_ld(RKDEV_32) == []
    with pytest.raises(ft.NoLoaderDevice, match="not in loader mode"):
        ft.select_rk3576(ft.parse_ld(RKDEV_32))


def test_a_rescan_that_finds_the_board_is_no_failure_and_a_cut_off_uf_is_undecided():
    out = ft.parse_transcript(RADXA_ROCK_UNBRICK)
    assert out == {"tool": "upgrade_tool",
                   "devices": [{"vid": "0x2207", "pid": "0x310b", "location": "21f", "mode": "Maskrom"}],
                   "failures": [], "ok": None}
    assert [(s.command, s.tool) for s in ft.read_transcript(RADXA_ROCK_UNBRICK)] == [
        ("ld", "upgrade_tool"), ("uf", "upgrade_tool")]


# A failed db. rockchip-linux/rkdeveloptool#88 (RK3066 listed as Loader, so the BootROM command is
# refused), with the lsusb runs before it; forum.radxa.com/t/rkdeveloptool-on-5a/19918 (Rock 5A:
# every command fails, then "db foo"; the kernel log pasted after it is not the tool's).
RKDEV_88 = """\
lsusb

Bus 005 Device 006: ID 2207:300a Fuzhou Rockchip Electronics Company RK3066 in Mask ROM mode

sudo lsusb -vs 005:006 | grep bcd

cannot read device status, Resource temporarily unavailable (11)
bcdUSB               2.01
bcdDevice            1.00


./rkdeveloptool ld

DevNo=1\tVid=0x2207,Pid=0x300a,LocationID=502\tLoader

./rkdeveloptool db RK30xxLoaderV2.15.bin 

The device does not support this operation!
"""
RADXA_FORUM_19918 = """\
me@host:~/$ rkdeveloptool ld
DevNo=1 Vid=0x2207,Pid=0x350b,LocationID=501 Maskrom
me@host:~/$ sudo rkdeveloptool rfi
Read Flash Info failed!
me@host:~/$ sudo rkdeveloptool ld
DevNo=1 Vid=0x2207,Pid=0x350b,LocationID=501 Maskrom
me@host:~/$ sudo rkdeveloptool ppt
Read GPT failed!
Read parameter failed!
Not found any partition table!
me@host:~/$ sudo rkdeveloptool ef
Starting to erase flash...
Getting flash info from device failed!
me@host:~/$ sudo rkdeveloptool rfi
Read Flash Info failed!
me@host:~/$ sudo rkdeveloptool ld
DevNo=1 Vid=0x2207,Pid=0x350b,LocationID=501 Maskrom
me@host:~/$ sudo rkdeveloptool rcb
Read capability Fail!
me@host:~/$ sudo rkdeveloptool db foo
Opening loader failed, exiting download boot!
/var/log/syslog shows:
Feb 1 13:55:41 host kernel: [97587.643904] usb 5-1: new high-speed USB device number 77 using xhci-hcd
Feb 1 13:55:41 host kernel: [97587.784524] usb 5-1: New USB device found, idVendor=2207, idProduct=350b, bcdDevice= 1.00
Feb 1 13:55:41 host kernel: [97587.784531] usb 5-1: New USB device strings: Mfr=0, Product=0, SerialNumber=0
Feb 1 13:55:41 host mtp-probe: checking bus 5, device 77: "/sys/devices/platform/usbdrd3_1/fc400000.usb/xhci-hcd.4.auto/usb5/5-1"
Feb 1 13:55:41 host mtp-probe: bus: 5, device: 77 was not an MTP device
"""


def test_failed_db_in_loader_mode():
    out = ft.parse_transcript(RKDEV_88)
    assert out == {"tool": "rkdeveloptool",
                   "devices": [{"vid": "0x2207", "pid": "0x300a", "location": "502", "mode": "Loader"}],
                   "failures": [{"command": "db", "words": "The device does not support this operation!"}],
                   "ok": False}
    db_output = RKDEV_88.rsplit("RK30xxLoaderV2.15.bin", 1)[1]  # what the driver gets from that run
    with pytest.raises(ft.WrongMode, match="Loader mode"):
        ft.check_db(db_output)


def test_every_failed_command_of_a_session_in_order_and_the_kernel_log_left_out():
    out = ft.parse_transcript(RADXA_FORUM_19918)
    assert out["devices"] == [{"vid": "0x2207", "pid": "0x350b", "location": "501", "mode": "Maskrom"}]
    assert out["failures"] == [
        {"command": "rfi", "words": "Read Flash Info failed!"},
        {"command": "ppt", "words": "Read GPT failed!\nRead parameter failed!\nNot found any partition table!"},
        {"command": "ef", "words": "Getting flash info from device failed!"},
        {"command": "rfi", "words": "Read Flash Info failed!"},
        {"command": "rcb", "words": "Read capability Fail!"},
        {"command": "db", "words": "Opening loader failed, exiting download boot!"},
    ]
    assert out["ok"] is False and out["tool"] == "rkdeveloptool"
    db = ft.read_transcript(RADXA_FORUM_19918)[-1]
    assert db.command == "db" and not any("kernel" in line or "mtp-probe" in line for line in db.lines)
    with pytest.raises(ft.LoaderFileError, match="not a packed loader"):
        ft.check_db("Opening loader failed, exiting download boot!\n", "foo")


# A failed write. HelmSecure/armbian-images#14 (Helm v2a, RK3399: the prompt path itself ends in
# "rkdeveloptool$"); radxa-docs/docs#613 (ROCK 5B with a loose eMMC module: db works, wl stops at 25 %
# twice with an ef between); JeffyCN/meta-rockchip#29 above (upgrade_tool wl in Maskrom).
HELM_14 = """\
twp@surfboard:~/src/rkdeveloptool$ sudo ./rkdeveloptool wl 0 ~/Downloads/Armbian_22.11.1-build-38_Helm-v2a_bullseye_legacy_4.4.213_minimal.img 
Write LBA from file (32%)
Write LBA failed!
"""
RADXA_DOCS_613 = """\

# sudo rkdeveloptool ld
DevNo=1\tVid=0x2207,Pid=0x350b,LocationID=304\tMaskrom

# sudo rkdeveloptool db  rk3588_spl_loader_v1.15.113.bin
Downloading bootloader succeeded.

# sudo rkdeveloptool wl 0 zero.img
Write LBA from file (25%)
Write LBA failed!

# sudo rkdeveloptool ef
Erasing flash complete.

# sudo rkdeveloptool wl 0 zero.img
Write LBA from file (25%)
Write LBA failed!

"""


def test_failed_write():
    assert ft.parse_transcript(HELM_14) == {
        "tool": "rkdeveloptool", "devices": [],
        "failures": [{"command": "wl", "words": "Write LBA from file (32%)\nWrite LBA failed!"}], "ok": False}
    with pytest.raises(ft.WriteFailed, match="at 32%"):
        ft.check_wl(HELM_14.split("\n", 1)[1])

    steps = ft.read_transcript(RADXA_DOCS_613)
    assert [(s.command, s.ok) for s in steps] == [("ld", True), ("db", True), ("wl", False), ("ef", True),
                                                   ("wl", False)]
    assert ft.parse_transcript(RADXA_DOCS_613)["failures"] == [
        {"command": "wl", "words": "Write LBA from file (25%)\nWrite LBA failed!"}] * 2

    out = ft.parse_transcript(META_ROCKCHIP_29)
    assert out["failures"] == [{"command": "wl", "words": "Write LBA failed!"}]  # "Not found config.ini" is none


def test_the_terminal_bytes_of_a_failed_write_read_the_same():
    """radxa-docs/docs#613 as the terminal got it: CRLF, and wl's progress redrawn in place."""
    redrawn = (RADXA_DOCS_613.replace("Write LBA failed!", f"{REDRAW}Write LBA failed!")
               .replace("\n", "\r\n").encode())
    assert ft.parse_transcript(redrawn) == ft.parse_transcript(RADXA_DOCS_613)


# A good uf. LuckfoxTECH/luckfox-pico#176 (Pico Pro Max, RV1106, from Maskrom: every stage);
# markbirss/ubuntu-24.04.2-picocalc README (RK3506 in Loader mode: no Download Boot stage).
LUCKFOX_176 = """\
./tools/linux/Linux_Upgrade_Tool/upgrade_tool uf ../Luckfox_Pico_Pro_Max_Flash-20241012T074752Z-001/Luckfox_Pico_Pro_Max_Flash/update.img
Using /mnt/rockchip/rv1106/luckfox-pico/tools/linux/Linux_Upgrade_Tool/config.ini
Loading firmware...
Support Type:1106\tFW Ver:0.0.00\tFW Time:2024-07-10 14:43:58
Loader ver:1.01\tLoader Time:2024-07-10 14:42:28
Start to upgrade firmware...
Download Boot Start
Download Boot Success
Wait For Maskrom Start
Wait For Maskrom Success
Test Device Start
Test Device Success
Check Chip Start
Check Chip Success
Get FlashInfo Start
Get FlashInfo Success
Prepare IDB Start
Prepare IDB Success
Download IDB Start
Download IDB Success
Download Firmware Start
Download Image... (100%)
Download Firmware Success
Upgrade firmware ok.
"""
PICOCALC_UF = """\
sudo ~/Downloads/linux/upgrade_tool uf update.img

Loading firmware...
Support Type:350F       FW Ver:8.1.00   FW Time:2025-06-13 13:34:37
Loader ver:1.01 Loader Time:2025-06-13 13:32:30
Start to upgrade firmware...
Test Device Start
Test Device Success
Check Chip Start
Check Chip Success
Get FlashInfo Start
Get FlashInfo Success
Prepare IDB Start
Prepare IDB Success
Download IDB Start
Download IDB Success
Download Firmware Start
Download Image... (100%)
Download Firmware Success
Upgrade firmware ok.
"""


@pytest.mark.parametrize("text, stages", [(LUCKFOX_176, 16), (PICOCALC_UF, 12)])
def test_good_upgrade_tool_uf(text, stages):
    assert ft.parse_transcript(text) == {"tool": "upgrade_tool", "devices": [], "failures": [], "ok": True}
    output = text.split("\n", 1)[1]  # without the command line, as the driver gets it
    ft.check_uf(output)
    assert len(ft.uf_stages(output)) == stages and ft.uf_stages(output)[-1] == ("Download Firmware", "Success")


# A failed stage. rockchip-linux/tools#21 (RK330A e-reader, upgrade_tool 1.57: its log, each line
# behind a timestamp, with non-fatal errors before the failing stage); LuckfoxTECH/luckfox-pico#66
# (EF on a Pico Max, typed with zsh's right prompt ":(" still on the line).
TOOLS_21_UF = """\
15:29:09        Upgrade Tool v1.57

15:29:09        Current process in /home/edent/Downloads/Linux_Upgrade_Tool_v1.57
15:29:09        Not found config.ini,in the /root/.config/upgrade_tool/config.ini
15:29:09        Command Line: ./upgrade_tool uf /home/edent/update-131.img
15:29:09        Current Device Location ID:11
15:29:09        Test Device Start
15:29:09        Test Device Success
15:29:14        Error:RKU_Read_EX failed,err=-7
15:29:14        ERROR:ReadCapability-->RKU_ReadCapability failed,err(-4)
15:29:14        Check Chip Start
15:29:19        Error:RKU_Write failed,err=-7
15:29:19        ERROR:CheckChip-->RKU_ReadChipInfo failed,RetCode(-3)
15:29:19        Check Chip Fail
15:29:19        Command mode out
"""
LUCKFOX_66 = """\
upgrade_tool EF update.img                                                                                                                                                   :(
Using /home/xxxxx/Downloads/upgrade_tool_v2.17_for_linux/config.ini
Loading loader...
Start to erase flash...
Download Boot Start
Download Boot Success
Wait For Maskrom Start
Wait For Maskrom Success
Test Device Start
Test Device Success
Get FlashInfo Start
Get FlashInfo Success
Prepare IDB Start
Prepare IDB Success
Erase IDB Start
Erase IDB Fail
"""


def test_failed_upgrade_tool_stage():
    out = ft.parse_transcript(TOOLS_21_UF)
    assert out == {"tool": "upgrade_tool", "devices": [], "ok": False, "failures": [
        {"command": "Check Chip",
         "words": "Error:RKU_Write failed,err=-7\nERROR:CheckChip-->RKU_ReadChipInfo failed,RetCode(-3)\n"
                  "Check Chip Fail"}]}
    with pytest.raises(ft.UpgradeFailed, match="another SoC") as e:
        ft.check_uf(TOOLS_21_UF)
    assert e.value.stage == "Check Chip"

    assert ft.parse_transcript(LUCKFOX_66) == {
        "tool": "upgrade_tool", "devices": [], "failures": [{"command": "Erase IDB", "words": "Erase IDB Fail"}],
        "ok": False}
    assert ft.read_transcript(LUCKFOX_66)[0].command == "ef"


# Prompts, menus and timestamps. rockchip-linux/tools#8 (upgrade_tool 1.3x run bare: its scan, the
# DevNo answer and the whole command menu); rockchip-linux/rkdeveloptool#119 (Rock 3C: numbered
# root prompts, other programs' commands between, and the tool's log lines with timestamps pasted
# after the last command).
TOOLS_8 = """\
[naseeb@localhost rockdev]$ ../../Linux_Upgrade_Tool/Linux_Upgrade_Tool/upgrade_tool
List of rockusb connected
DevNo=1    Vid=0x2207,Pid=0x320a,LocationID=30b    Loader
Found 1 rockusb,Select input DevNo,Rescan press <R>,Quit press <Q>:1

---------------------Tool Usage ---------------------
Help:             H
Quit:             Q
Version:          V
Clear Screen:     CS
------------------Upgrade Command ------------------
ChooseDevice:        CD
SwitchDevice:        SD
UpgradeFirmware:    UF <Firmware> [-noreset]
UpgradeLoader:        UL <Loader> [-noreset]
DownloadImage:        DI <-p|-b|-k|-s|-r|-m|-u|-t|-re image>
DownloadBoot:        DB <Loader>
EraseFlash:        EF <Loader|firmware> [DirectLBA]
PartitionList:        PL
----------------Professional Command -----------------
TestDevice:        TD
ResetDevice:        RD [subcode]
ResetPipe:        RP [pipe]
ReadCapability:        RCB
ReadFlashID:        RID
ReadFlashInfo:        RFI
ReadChipInfo:        RCI
ReadSector:        RS  <BeginSec> <SectorLen> [-decode] [File]
WriteSector:        WS  <BeginSec> <File>
ReadLBA:        RL  <BeginSec> <SectorLen> [File]
WriteLBA:        WL  <BeginSec> <File>
EraseBlock:        EB <CS> <BeginBlock> <BlokcLen> [--Force]
"""
RKDEV_119 = """\
ozymandias 668 # lsusb
...
Bus 001 Device 043: ID 2207:350a Fuzhou Rockchip Electronics Company 
...

ozymandias 661 # ./rkdeveloptool -v
rkdeveloptool ver 1.32

ozymandias 663 # dpkg -l | grep libusb-1
ii  libusb-1.0-0:amd64                               2:1.0.29-2+b1                             amd64        userspace USB programming library
ii  libusb-1.0-0-dev:amd64                           2:1.0.29-2+b1                             amd64        userspace USB programming library development files

ozymandias 664 # ./rkdeveloptool ld
DevNo=1 Vid=0x2207,Pid=0x350a,LocationID=108    Maskrom

ozymandias 665 # ./rkdeveloptool ppt
Read GPT failed!
Read parameter failed!
Not found any partition table!
ozymandias 666 # ./rkdeveloptool rd
Reset Device failed!

21:13:45        Error:RKU_Write failed, err=-1
21:13:45        Error: read gpt failed, err=-3
21:13:45        Error:RKU_Write failed, err=-1
21:13:45        Error: read parameter failed, err=-3
21:13:47        Error:RKU_Write failed, err=-1
21:13:47        Error: RKU_ResetDevice failed, err=-3
"""


def test_upgrade_tool_menu_is_no_output_of_note():
    out = ft.parse_transcript(TOOLS_8)
    assert out == {"tool": "upgrade_tool",
                   "devices": [{"vid": "0x2207", "pid": "0x320a", "location": "30b", "mode": "Loader"}],
                   "failures": [], "ok": True}
    (scan,) = ft.read_transcript(TOOLS_8)
    assert scan.command == "ld" and scan.tool == "upgrade_tool" and not scan.failures


def test_numbered_prompts_other_commands_and_timestamped_log_lines():
    steps = ft.read_transcript(RKDEV_119)
    assert [(s.command, s.tool) for s in steps if s.tool] == [
        ("-v", "rkdeveloptool"), ("ld", "rkdeveloptool"), ("ppt", "rkdeveloptool"), ("rd", "rkdeveloptool")]
    assert steps[-1].lines[-1] == "Error: RKU_ResetDevice failed, err=-3"  # the timestamp is gone
    out = ft.parse_transcript(RKDEV_119)
    assert out["devices"] == [{"vid": "0x2207", "pid": "0x350a", "location": "108", "mode": "Maskrom"}]
    assert out["failures"] == [  # the log lines are details, not more failures of rd
        {"command": "ppt", "words": "Read GPT failed!\nRead parameter failed!\nNot found any partition table!"},
        {"command": "rd", "words": "Reset Device failed!"}]
    assert out["ok"] is False


def test_tool_output_is_not_taken_for_a_command_line():
    """Lines that hold a tool's name but are its output, or prose, start no step."""
    steps = ft.read_transcript("rkdeveloptool ver 1.32\nProgram Log will save in the /root/upgrade_tool/log/\n"
                               "I repeated the `rkdeveloptool wl 0` command, but it returned it immediately.\n")
    assert len(steps) == 1 and steps[0].command == "-v"


@pytest.mark.parametrize("line, command, tool", [
    ("timeout --kill-after=10 600 rkdeveloptool wl 0 /var/cache/labgrid/a.img", "wl", "rkdeveloptool"),  # as run
    ("sudo -E ./rkdeveloptool db rk3576_spl_loader_v1.12.108.bin", "db", "rkdeveloptool"),
    ("C:\\Linux_Upgrade_Tool> upgrade_tool.exe UF update.img", "uf", "upgrade_tool"),
    ("Rockusb>LD", "ld", "upgrade_tool"),
])
def test_command_line_forms(line, command, tool):
    (step,) = ft.read_transcript(line + "\n")
    assert (step.command, step.tool) == (command, tool)


def test_output_without_commands_is_split_where_it_speaks_of_another_command():
    """Miouyouyou/RockMyy#7: a wrapper script's output (quoted with '>'), no rkdeveloptool command lines."""
    text = """\
> dauker@dauker-asus:~/chan/miqi-prebuilt/u-boot$ sudo ./flash.sh
> Waiting for rockchip device...
> Bus 001 Device 007: ID 2207:320a  
> Flashing RK3288_uboot.img...
> The  Device did not support this operation!
> Write LBA from file (100%)
> Write LBA from file (100%)
> Reset Device OK.
"""
    out = ft.parse_transcript(text)
    assert out["failures"] == [{"command": None, "words": "The  Device did not support this operation!"}]
    assert out["ok"] is True and out["tool"] == "rkdeveloptool"
    assert [s.command for s in ft.read_transcript(text)] == [None, "wl", "rd"]


# --- hil parse flash-tool ------------------------------------------------------------------------
HIL = Path(sys.executable).parent / "hil"


def test_hil_parse_flash_tool_reads_a_file(tmp_path, capsys):
    path = tmp_path / "flash.txt"
    path.write_bytes(HELM_14.replace("\n", "\r\n").encode())
    assert cli.main(["parse", "flash-tool", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == ft.parse_transcript(HELM_14)

    assert cli.main(["parse", "flash-tool", str(tmp_path / "missing")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: cannot read {tmp_path / 'missing'}: No such file or directory\n"

    path.write_text("hello\n")
    assert cli.main(["parse", "flash-tool", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"tool": None, "devices": [], "failures": [], "ok": None}
    assert err.startswith(f"warning: {path} holds no rkdeveloptool or upgrade_tool command")


def test_hil_parse_flash_tool_as_a_command_reading_stdin():
    r = subprocess.run([str(HIL), "parse", "flash-tool", "-"], input=TOOLS_21_UF.replace("\n", "\r\n"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tool"] == "upgrade_tool" and out["ok"] is False
    assert [f["command"] for f in out["failures"]] == ["Check Chip"]
