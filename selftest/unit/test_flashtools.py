"""Parsers and argument builders for rkdeveloptool and upgrade_tool, against the tools' exact output."""

from __future__ import annotations

import struct

import pytest

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
