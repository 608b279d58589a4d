"""hil.rockchip.rkfw against update.img headers built field by field from the documented layout
(rkdeveloptool RKImage.h / RKBoot.h, rockchip-mkbootimg rkafp.h), two real headers published
as hexdumps, the chip refusal, raw disk images and files cut short."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from hil.rockchip import inspect, rkfw
from hil.rockchip.rkfw import FirmwareError, FirmwareImage, check_chip, chip_name, is_update_img, read_update_img

RK3576 = 0x33353736  # '3'<<24 | '5'<<16 | '7'<<8 | '6': boot_merger's convertChipType("3576")


def rkfw_header(*, chip=RK3576, version=(1, 0, 0), when=(2025, 3, 14, 9, 26, 53), loader_offset=0x66,
                loader_size=0, fw_offset=0, fw_size=0, os_type=1, high=None) -> bytes:
    """The 0x66-byte RKFW header, one field after another as RKImage.h lays it out."""
    major, minor, patch = version
    year, month, day, hour, minute, second = when
    out = b"RKFW"                                                  # 0x00 uiTag 0x57464B52
    out += struct.pack("<H", 0x66)                                 # 0x04 usSize
    out += struct.pack("<I", major << 24 | minor << 16 | patch)    # 0x06 dwVersion, ROM_VERSION(a,b,c)
    out += struct.pack("<I", 0x02000000)                           # 0x0a dwMergeVersion (img_maker: rk3588)
    out += struct.pack("<HBBBBB", year, month, day, hour, minute, second)  # 0x0e STRUCT_RKTIME
    out += struct.pack("<I", chip)                                 # 0x15 emSupportChip
    out += struct.pack("<II", loader_offset, loader_size)          # 0x19 dwBootOffset, 0x1d dwBootSize
    out += struct.pack("<II", fw_offset, fw_size & 0xFFFFFFFF)     # 0x21 dwFWOffset, 0x25 dwFWSize
    reserved = bytearray(61)                                       # 0x29 reserved[61]
    struct.pack_into("<I", reserved, 4, os_type)                   # reserved[4]: OS type
    if high is not None:
        reserved[14:16] = b"HI"                                    # reserved[14..15] "HI"
        struct.pack_into("<I", reserved, 16, high)                 # reserved[16]: bits 32-63
    out += bytes(reserved)
    assert len(out) == 0x66
    return out


def loader(chip=RK3576, tag=b"LDR ") -> bytes:
    """MiniLoaderAll.bin's start: the RKBoot.h header (tag, size, versions, time, chip...)."""
    head = tag + struct.pack("<HII", 0x66, 0x0100, 0x01030000) + struct.pack("<HBBBBB", 2025, 3, 1, 8, 0, 0)
    return head + struct.pack("<I", chip) + b"\0" * (0x66 - 0x19) + b"\xaa" * 200


def rkaf(model="RK3576", manufacturer="MYIR", length=0) -> bytes:
    """afptool's RKAF header (rkafp.h): magic, length, model[0x22], id[0x1e], manufacturer[0x38]..."""
    out = b"RKAF" + struct.pack("<I", length) + model.encode().ljust(0x22, b"\0") + b"id".ljust(0x1E, b"\0")
    out += manufacturer.encode().ljust(0x38, b"\0") + struct.pack("<III", 0, 1 << 24, 0)
    return out + b"\0" * (0x8C - len(out)) + b"\x55" * 300


def update_img(tmp_path: Path, name="update.img", *, chip=RK3576, loader_chip=RK3576, version=(1, 0, 0),
               model="RK3576") -> Path:
    boot, package = loader(loader_chip), rkaf(model)
    header = rkfw_header(chip=chip, version=version, loader_size=len(boot), fw_offset=0x66 + len(boot),
                         fw_size=len(package))
    body = header + boot + package
    path = tmp_path / name
    path.write_bytes(body + hashlib.md5(body).hexdigest().encode())  # img_maker's append_md5sum
    return path


def refused(path, *words) -> str:
    with pytest.raises(FirmwareError) as e:
        read_update_img(path)
    message = str(e.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


# --- the crafted header ---------------------------------------------------------------------------

def test_crafted_header_field_by_field(tmp_path):
    path = update_img(tmp_path, version=(1, 2, 3))
    assert path.read_bytes()[0x15:0x19] == b"6753", "the chip tag is stored little-endian"
    image = read_update_img(path)
    assert image == FirmwareImage(path=str(path), chip="RK3576", version="1.2.03", release_time="2025-03-14T09:26:53",
                                  loader_offset=0x66, loader_size=len(loader()), firmware_offset=0x66 + len(loader()),
                                  firmware_size=len(rkaf()), loader_chip="RK3576", model="RK3576", manufacturer="MYIR")
    assert image.to_json() == {
        "file": str(path), "format": "rkfw", "chip": "RK3576", "version": "1.2.03",
        "release_time": "2025-03-14T09:26:53", "loader_offset": 0x66, "loader_size": len(loader()),
        "firmware_offset": 0x66 + len(loader()), "firmware_size": len(rkaf()), "loader_chip": "RK3576",
        "model": "RK3576", "manufacturer": "MYIR"}
    assert is_update_img(path)
    check_chip(image, "RK3576")
    check_chip(image, "rk3576")


def test_boot_tag_loader_and_bad_date(tmp_path):
    boot, package = loader(tag=b"BOOT"), rkaf(model="")
    header = rkfw_header(when=(0, 0, 0, 0, 0, 0), loader_size=len(boot), fw_offset=0x66 + len(boot),
                         fw_size=len(package))
    path = tmp_path / "old.img"
    path.write_bytes(header + boot + package)
    image = read_update_img(path)
    assert (image.release_time, image.model, image.loader_chip) == (None, None, "RK3576")


def test_version_as_upgrade_tool_prints_it(tmp_path):
    """``FW Ver:1.0.00`` (Firefly RK3588), ``8.1.00`` and ``6.0.277`` (Khadas) as printed."""
    for version, printed in (((1, 0, 0), "1.0.00"), ((8, 1, 0), "8.1.00"), ((6, 0, 277), "6.0.277")):
        assert read_update_img(update_img(tmp_path, version=version)).version == printed


@pytest.mark.parametrize("raw, name", [
    (0x33353736, "RK3576"), (0x33353838, "RK3588"), (0x33353638, "RK3568"), (0x33333043, "RK330C"),
    (0x33323241, "RK322A"), (0x60, "RK30"), (0x80, "RK32"), (0xDEADBEEF, "0xdeadbeef"),
])
def test_chip_names(raw, name):
    assert chip_name(raw) == name


def test_chip_tags():
    assert [rkfw.chip_tag(s) for s in ("RK3576", "rk3588", "RK3588S", "RK3566", "RK3399")] == \
        ["RK3576", "RK3588", "RK3588", "RK3568", "RK330C"]


# --- real headers, as published -------------------------------------------------------------------

# `od -An -tx1 -N 64` of a 2024 RK3588 Ubuntu update.img (R1_UbuntuCamera_ImageV2V3.img), from a
# public write-up; the file is ~9.6 GB, so its size needs the "HI" high word
REAL_RK3588 = bytes.fromhex("""
 52 4b 46 57 66 00 00 00 00 01 00 00 00 02 e8 07
 09 1d 0b 0e 02 38 38 35 33 66 00 00 00 c0 f1 06
 00 26 f2 06 00 04 d8 8c 3e 00 00 00 00 01 00 00
 00 00 00 00 00 00 00 48 49 02 00 00 00 00 00 00
""")
# `hexdump -C rom_rk322x.img | head -n2` from uictorius.github.io "Anatomy of a Rockchip Android ROM";
# img_unpack printed "rom version: 8.0.0", "build time: 2018-12-17 22:33:50", "chip: 33323241"
REAL_RK322X = bytes.fromhex("""
 52 4b 46 57 66 00 00 00 00 08 00 00 06 01 e2 07
 0c 11 16 21 32 41 32 32 33 66 00 00 00 4e a9 02
""")
# the same post's RKAF hexdump: length 0x4cc8f000, model "RK322x"
REAL_RK322X_RKAF = bytes.fromhex("52 4b 41 46 00 f0 c8 4c 52 4b 33 32 32 78 00 00") + b"\0" * 16


def sparse(path: Path, size: int, pieces: dict[int, bytes]) -> Path:
    """A file of ``size`` bytes (sparse: nothing but ``pieces`` is written)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in pieces.items():
            f.seek(offset)
            f.write(data)
    return path


def test_real_rk3588_header(tmp_path):
    """Bytes 0..63 as published; the loader and RKAF starts (not shown there) are crafted."""
    fw_offset, fw_size = 0x0006F226, (2 << 32) + 0x3E8CD804
    path = sparse(tmp_path / "R1_UbuntuCamera_ImageV2V3.img", fw_offset + fw_size + 32, {
        0: REAL_RK3588, 0x66: loader(0x33353838), fw_offset: rkaf("RK3588", "rockchip")})
    image = read_update_img(path)
    assert (image.chip, image.version, image.release_time) == ("RK3588", "1.0.00", "2024-09-29T11:14:02")
    assert (image.loader_offset, image.loader_size) == (0x66, 455104)
    assert (image.firmware_offset, image.firmware_size) == (0x66 + 455104, 9639352324)
    with pytest.raises(FirmwareError) as e:
        check_chip(image, "RK3576")
    for word in (str(path), "built for RK3588", "board is RK3576", "Check Chip", "rkImageMaker -RK3576"):
        assert word in str(e.value)
    # cut at 4 GiB (a FAT32 copy): the high word says the package goes on
    with open(path, "r+b") as f:
        f.truncate((4 << 30) - 1)
    refused(path, "cut short", "firmware package", "ending at byte 9639807530", f"has {(4 << 30) - 1} bytes")


def test_real_rk322x_header(tmp_path):
    """Bytes 0..31 as published; byte 0x20 (0) from the same post's afptool listing, whose
    MiniLoaderAll.bin is 0x0002A94E bytes; the package length from its RKAF header + 4."""
    loader_size = 0x0002A94E
    fw_offset, fw_size = 0x66 + loader_size, 0x4CC8F000 + 4
    header = REAL_RK322X + struct.pack("<III", 0, fw_offset, fw_size)[3:] + b"\0" * (0x66 - 0x29)
    assert header[0x1D:0x21] == struct.pack("<I", loader_size)
    path = sparse(tmp_path / "rom_rk322x.img", fw_offset + fw_size + 32, {
        0: header, 0x66: loader(0x33323241, tag=b"BOOT"), fw_offset: REAL_RK322X_RKAF})
    image = read_update_img(path)
    assert (image.chip, image.version, image.release_time) == ("RK322A", "8.0.00", "2018-12-17T22:33:50")
    assert (image.model, image.loader_chip) == ("RK322x", "RK322A")
    with pytest.raises(FirmwareError, match="built for RK322A but the board is RK3576"):
        check_chip(image, "RK3576")


# --- refusals -------------------------------------------------------------------------------------

def test_other_chip_refused(tmp_path):
    image = read_update_img(update_img(tmp_path, chip=0x33353838, loader_chip=0x33353838))
    with pytest.raises(FirmwareError) as e:
        check_chip(image, "RK3576")
    assert str(e.value).startswith(f"update.img {image.path} is built for RK3588 but the board is RK3576: ")
    rk3399 = read_update_img(update_img(tmp_path, "rk3399.img", chip=0x33333043, loader_chip=0x33333043))
    with pytest.raises(FirmwareError, match=r"built for RK330C \(RK3399\) but the board is RK3576"):
        check_chip(rk3399, "RK3576")
    check_chip(rk3399, "RK3399")


def test_loader_of_another_chip_refused(tmp_path):
    image = read_update_img(update_img(tmp_path, loader_chip=0x33353838))
    assert (image.chip, image.loader_chip) == ("RK3576", "RK3588")
    with pytest.raises(FirmwareError) as e:
        check_chip(image, "RK3576")
    assert "says RK3576 in its header" in str(e.value) and "loader inside is for RK3588" in str(e.value)


@pytest.mark.parametrize("kind, first, lba1", [
    ("GPT", b"\0" * 446 + b"\0\0\2\0\xee" + b"\0" * 59 + b"\x55\xaa", b"EFI PART\0\0\1\0\x5c\0\0\0"),
    ("MBR", b"\xfa\xb8" + b"\0" * 508 + b"\x55\xaa", b"\0" * 16),
])
def test_raw_disk_image_refused(tmp_path, kind, first, lba1):
    path = tmp_path / "rk3576-debian12.img"
    path.write_bytes(first + lba1 + b"\0" * 8192)
    refused(path, f"raw disk image ({kind} partition table)", "no RKFW header", "wl 0", "not with 'upgrade_tool uf'")
    assert not is_update_img(path)


def test_truncated(tmp_path):
    data = update_img(tmp_path).read_bytes()
    refused((tmp_path / "a.img"), "no such file")
    for cut, words in ((50, ["cut short", "50 bytes", "102-byte RKFW header"]),
                       (0x66 + 100, ["cut short", "boot loader", "at offset 0x66", f"has {0x66 + 100} bytes"]),
                       (len(data) - 40, ["cut short", "firmware package", f"has {len(data) - 40} bytes"])):
        path = tmp_path / f"cut{cut}.img"
        path.write_bytes(data[:cut])
        refused(path, *words)
    path = tmp_path / "empty.img"
    path.write_bytes(b"")
    refused(path, "empty")


def test_damaged_inside(tmp_path):
    data = bytearray(update_img(tmp_path).read_bytes())
    data[0x66:0x6A] = b"\0\0\0\0"
    (tmp_path / "noloader.img").write_bytes(bytes(data))
    refused(tmp_path / "noloader.img", "no boot loader", "offset 0x66", "'BOOT' or 'LDR '")
    data = bytearray(update_img(tmp_path).read_bytes())
    at = 0x66 + len(loader())
    data[at:at + 4] = b"XXXX"
    (tmp_path / "norkaf.img").write_bytes(bytes(data))
    refused(tmp_path / "norkaf.img", "no RKAF package", f"offset {at:#x}")


def test_bare_rkaf_and_other_files(tmp_path):
    (tmp_path / "update.raw.img").write_bytes(rkaf())
    refused(tmp_path / "update.raw.img", "bare RKAF package", "rkImageMaker -RK3576")
    (tmp_path / "x.img").write_bytes(b"\x7fELF\2\1\1\0" + b"\0" * 200)
    refused(tmp_path / "x.img", "not a Rockchip update.img", "not 'RKFW'", "ELF")
    (tmp_path / "sparse.img").write_bytes(b"\x3a\xff\x26\xed\1\0\0\0" + b"\0" * 200)
    refused(tmp_path / "sparse.img", "Android sparse image")
    assert not is_update_img(tmp_path / "absent.img") and not is_update_img(tmp_path)


def test_inspect_update_img_and_raw_image(tmp_path, capsys):
    good = update_img(tmp_path, "pkg.bin")  # the name says nothing: the content does
    raw = tmp_path / "disk.img"
    raw.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"EFI PART" + b"\0" * 600)
    assert inspect.main([str(good), str(raw)]) == 1
    text = capsys.readouterr().out
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(text)
    second, _ = decoder.raw_decode(text, end + 1)
    assert first == read_update_img(good).to_json() and first["format"] == "rkfw"
    assert second["file"] == str(raw) and "raw disk image (GPT" in second["error"]
