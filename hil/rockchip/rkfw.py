"""Rockchip firmware packages (``update.img``, RKFW), read on the host from their headers: what
``upgrade_tool uf`` prints (``Support Type:RK3576  FW Ver:1.0.00  FW Time:...``) and the chip
check it makes, before anything is flashed. A package is gigabytes; only headers are read.

Layout of the 0x66-byte RKFW header, little-endian (rockchip-linux/rkdeveloptool ``RKImage.h``
``STRUCT_RKIMAGE_HEAD`` with ``STRUCT_RKTIME`` from ``DefineHeader.h``; the same offsets in
linux-rockchip/rkflashtool ``rkunpack.c`` and neo-technologies/rockchip-mkbootimg ``rkrom.h``)::

    0x00 "RKFW" (tag 0x57464B52, RKImage.cpp)   0x15 u32 chip
    0x04 u16 header size (0x66)                  0x19 u32 loader offset   0x1d u32 loader size
    0x06 u32 version                             0x21 u32 package offset  0x25 u32 package size
    0x0a u32 merge version ("code")              0x29 61 reserved bytes:
    0x0e u16 year, then u8 month, day,                0x2d u32 OS type (0 RK, 1 Android),
         hour, minute, second                         0x37 "HI" -> 0x39 u32 high 32 bits

- Version: ``ROM_VERSION(a,b,c) = a<<24 | b<<16 | c`` (rkrom.h; afptool reads the parameter's
  ``FIRMWARE_VER`` with ``"%d.%d.%d"``; rkunpack prints ``buf[9].buf[8].u16@6``). upgrade_tool is
  closed source; its ``FW Ver:1.0.00`` (Firefly ROC-RK3588S-PC docs), ``8.1.00`` and ``6.0.277``
  (Khadas Edge docs) all fit ``"%d.%d.%02d"``, which ``version`` follows [infer].
- Packages over 4 GiB: when reserved bytes 14-15 read ``HI`` the u32 at 0x39 holds bits 32-63 of
  offset + size of the package (RKImage.cpp; mkbootimg ``img_maker.c`` writes ``0x49480000`` and
  ``size / 4 GiB``). A real 9.6 GB RK3588 header shows it (``48 49 02 00 00 00`` at 0x37).
- After the package: a 32-character MD5 in hex (img_maker.c ``append_md5sum``); 160 bytes or more
  there mean a signed package (RKImage.cpp).
- At the loader offset: the boot loader (MiniLoaderAll.bin), whose header starts ``BOOT``
  (0x544F4F42) or ``LDR `` (0x2052444C, new IDB) and has the same chip field at +0x15
  (rkdeveloptool ``RKBoot.h`` ``STRUCT_RKBOOT_HEAD``; xboot/xrock ``loader.c``).
- At the package offset: the RKAF package (afptool): ``RKAF``, u32 length, model (0x22 bytes) at
  8, id (0x1e) at 0x2a, manufacturer (0x38) at 0x48 (rockchip-mkbootimg ``rkafp.h``; rkunpack
  prints ``manufacturer`` from 0x48 and ``model`` from 0x08).

The chip field, and how sure this is. The boot merger packs the chip name after ``RK`` as four
ASCII characters, first character in the top byte: ``'3'<<24 | '5'<<16 | '7'<<8 | '6'``
(rkdeveloptool ``main.cpp`` ``getChipType``/``convertChipType(chip + 2)``), from the loader
ini's ``NAME`` (rockchip-linux/rkbin ``RKBOOT/RK3576MINIALL.ini``: ``NAME=RK3576``; RK3399's says
``RK330C``, RK3566's ``RK3568``). Stored little-endian, the file's bytes read ``6753``. Rockchip's
SDK script ``mk-updateimg.sh`` takes that tag from the loader (``TAG=RK$(hexdump -s 21 -n 4 -e
'4 "%c"' MiniLoaderAll.bin | rev)``) and runs ``rkImageMaker -$TAG``; rkImageMaker is closed,
but the open img_maker.c writes the same numbers for its ``-rk3588``/``-rk3399`` arguments
(0x33353838, 0x33333043). Real headers agree: a 2024 RK3588 update.img has ``38 38 35 33`` at
0x15, an rk322x one ``41 32 32 33`` (img_unpack: ``chip: 33323241``), and upgrade_tool prints
``Support Type:RK330C`` for an RK3399 package. So ``chip`` is ``RK`` + the u32's bytes from the
top down, as upgrade_tool prints it: sure for the encoding (source and three real files agree);
``RK3576`` = 0x33353736 follows from the ini and has not been seen in a real RK3576 package.
Images of the RK27-RK32 era hold an enum instead (``ENUM_RKDEVICE_TYPE``, DefineHeader.h).
"""

from __future__ import annotations

import datetime
import os
import struct

import attr

from hil.rockchip import magic
from hil.rockchip.magic import looks_like, raw_disk_image, show

HEADER_SIZE = 0x66
LOADER_TAGS = (b"BOOT", b"LDR ")
RKAF_HEADER = 0x8C
_HEADER = struct.Struct("<4sHII HBBBBB I IIII")
# DefineHeader.h ENUM_RKDEVICE_TYPE: the chip field of images before the ASCII tags
LEGACY_CHIPS = {0x10: "RK27", 0x11: "RKCAYMAN", 0x20: "RK28", 0x21: "RK281X", 0x22: "RKPANDA", 0x30: "RKNANO",
                0x31: "RKSMART", 0x40: "RKCROWN", 0x50: "RK29", 0x51: "RK292X", 0x60: "RK30", 0x61: "RK30B",
                0x70: "RK31", 0x80: "RK32"}
# SoCs whose loader ini NAME (hence the package's chip tag) is not the SoC's own name (rkbin RKBOOT/*.ini)
CHIP_TAGS = {"RK3399": "RK330C", "RK3566": "RK3568", "RK3588S": "RK3588"}
_TAG_SOCS = {"RK330C": "RK3399", "RK3568": "RK3566/RK3568"}


class FirmwareError(ValueError):
    """An update.img that cannot be flashed as one: the message names the file, the cause and
    what to do."""


@attr.s(frozen=True, kw_only=True)
class FirmwareImage:
    path = attr.ib(converter=str)
    chip: str = attr.ib()  # as upgrade_tool prints "Support Type:RK3576"
    version: str = attr.ib()  # as upgrade_tool prints "FW Ver:1.0.00"
    release_time: str | None = attr.ib()  # ISO 8601, local time of the build host
    loader_offset: int = attr.ib()
    loader_size: int = attr.ib()
    firmware_offset: int = attr.ib()
    firmware_size: int = attr.ib()
    loader_chip: str | None = attr.ib(default=None)  # the chip field of the loader inside
    model: str | None = attr.ib(default=None)  # the RKAF package's MACHINE_MODEL
    manufacturer: str | None = attr.ib(default=None)

    def to_json(self) -> dict:
        return {"file": self.path, "format": "rkfw", "chip": self.chip, "version": self.version,
                "release_time": self.release_time, "loader_offset": self.loader_offset,
                "loader_size": self.loader_size, "firmware_offset": self.firmware_offset,
                "firmware_size": self.firmware_size, "loader_chip": self.loader_chip, "model": self.model,
                "manufacturer": self.manufacturer}


def chip_name(raw: int) -> str:
    """The 4-byte chip field as upgrade_tool prints it: 0x33353736 -> ``RK3576``."""
    text = raw.to_bytes(4, "big")
    if all(0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A for b in text):
        return "RK" + text.decode("ascii")
    return LEGACY_CHIPS.get(raw, f"0x{raw:08x}")


def chip_tag(soc: str) -> str:
    """The chip tag an update.img for this SoC carries (``RK3576`` -> ``RK3576``, ``RK3399`` ->
    ``RK330C``): the loader ini's NAME, which rkImageMaker is given."""
    soc = soc.strip().upper()
    return CHIP_TAGS.get(soc, soc)


def _describe(tag: str) -> str:
    return f"{tag} ({_TAG_SOCS[tag]})" if tag in _TAG_SOCS else tag


def is_update_img(path) -> bool:
    """Whether the file starts with the RKFW tag (nothing else is checked)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == magic.RKFW
    except OSError:
        return False


def _cstr(data: bytes) -> str | None:
    text = data.split(b"\0", 1)[0].decode("latin-1").strip()
    return text or None


def _release_time(year, month, day, hour, minute, second) -> str | None:
    try:
        return datetime.datetime(year, month, day, hour, minute, second).isoformat()
    except ValueError:
        return None


def read_update_img(path) -> FirmwareImage:
    """The RKFW header of an update.img, with the chip of its loader and the model and
    manufacturer of its RKAF package (three small reads; nothing else).

    Raises FirmwareError for a file that is empty, cut short (what the header promises
    against the file's size), a raw disk image (MBR/GPT, for ``wl 0``), a bare RKAF package,
    anything else without the RKFW tag, or one whose loader or package is not where the header
    says."""
    path = str(path)
    with magic.opened(path, FirmwareError, "an update.img") as f:
        size = os.fstat(f.fileno()).st_size
        image = _header(path, size, f.read(magic.HEAD))
        f.seek(image.loader_offset)
        loader = f.read(0x19)
        f.seek(image.firmware_offset)
        package = f.read(RKAF_HEADER)
    if loader[:4] not in LOADER_TAGS:
        raise FirmwareError(f"update.img {path} has no boot loader where its header says (offset "
                            f"{image.loader_offset:#x}: {show(loader)}, not 'BOOT' or 'LDR '): the file is damaged; "
                            f"build or copy it again")
    if not package.startswith(magic.RKAF):
        raise FirmwareError(f"update.img {path} has no RKAF package where its header says (offset "
                            f"{image.firmware_offset:#x}: {show(package)}, not 'RKAF'): the file is damaged; "
                            f"build or copy it again")
    return attr.evolve(image, loader_chip=chip_name(struct.unpack_from("<I", loader, 0x15)[0]),
                       model=_cstr(package[0x08:0x2A]), manufacturer=_cstr(package[0x48:0x80]))


def _header(path: str, size: int, head: bytes) -> FirmwareImage:
    if size == 0:
        raise FirmwareError(f"update.img {path} is empty (0 bytes): copy it again")
    if not head.startswith(magic.RKFW):
        disk = raw_disk_image(head)
        if disk:
            raise FirmwareError(f"{path} is a raw disk image ({disk} partition table) with no RKFW header, not an "
                                f"update.img: flash it whole with 'rkdeveloptool wl 0 {path}' (or 'upgrade_tool "
                                f"wl 0'), not with 'upgrade_tool uf'")
        if head.startswith(magic.RKAF):
            raise FirmwareError(f"{path} is a bare RKAF package (afptool -pack output) without the RKFW header: "
                                f"wrap it with 'rkImageMaker -RK3576 MiniLoaderAll.bin {path} update.img "
                                f"-os_type:androidos'")
        what = looks_like(head, b"", path)
        raise FirmwareError(f"{path} is not a Rockchip update.img: it starts with {show(head)}, not 'RKFW'"
                            + (f"; it looks like {what}" if what else ""))
    if size < HEADER_SIZE:
        raise FirmwareError(f"update.img {path} is cut short: {size} bytes, less than the {HEADER_SIZE}-byte RKFW "
                            f"header: copy it again")
    (_, _, version, _, year, month, day, hour, minute, second, chip,
     loader_offset, loader_size, fw_offset, fw_size) = _HEADER.unpack_from(head, 0)
    if head[0x37:0x39] == b"HI":
        fw_size += struct.unpack_from("<I", head, 0x39)[0] << 32
    for what, offset, length in (("boot loader", loader_offset, loader_size),
                                 ("firmware package", fw_offset, fw_size)):
        if offset + length > size:
            raise FirmwareError(f"update.img {path} is cut short: its header puts the {what} at offset {offset:#x}, "
                                f"{length} bytes long (ending at byte {offset + length}), but the file has {size} "
                                f"bytes: copy it again")
    if loader_size < 0x19 or fw_size < RKAF_HEADER:
        raise FirmwareError(f"update.img {path}: its header gives a {loader_size}-byte boot loader and a "
                            f"{fw_size}-byte firmware package, too small to be either: the header is damaged")
    return FirmwareImage(
        path=path, chip=chip_name(chip),
        version=f"{version >> 24 & 0xFF}.{version >> 16 & 0xFF}.{version & 0xFFFF:02d}",
        release_time=_release_time(year, month, day, hour, minute, second),
        loader_offset=loader_offset, loader_size=loader_size, firmware_offset=fw_offset, firmware_size=fw_size)


def check_chip(image: FirmwareImage, soc: str) -> None:
    """Raise FirmwareError unless the package (and the loader inside it) is built for ``soc``:
    upgrade_tool refuses it at 'Check Chip', or flashes a loader that cannot start the board."""
    want, board = chip_tag(soc), soc.strip().upper()
    if image.chip != want:
        raise FirmwareError(f"update.img {image.path} is built for {_describe(image.chip)} but the board is {board}: "
                            f"upgrade_tool would stop at 'Check Chip'; use a package built for {board} "
                            f"(rkImageMaker -{want} with an {board} MiniLoaderAll.bin)")
    if image.loader_chip is not None and image.loader_chip != want:
        raise FirmwareError(f"update.img {image.path} says {image.chip} in its header, but the boot loader inside is "
                            f"for {_describe(image.loader_chip)}: the board would not start from it; rebuild the "
                            f"package with an {board} MiniLoaderAll.bin")
