"""The twin's loader file, ``rk3576_spl_loader_twin.bin``, in the real RKBoot format.

``rkdeveloptool db <loader>`` parses the file, then sends its 471 and 472 entries to a
board in Maskrom. The twin's file has the layout of a real ``rk3576_spl_loader_*.bin``,
so the unmodified tool reads it; its entries carry a plain-text marker naming the SoC,
which the twin's board checks (:func:`entry_chip`): a loader built for another SoC, same
format, is refused by the device as a real BootROM would never run it.

Format facts (rkdeveloptool RKBoot.h ``STRUCT_RKBOOT_HEAD`` / ``STRUCT_RKBOOT_ENTRY``,
RKBoot.cpp ``CRKBoot::CRKBoot``, RKImage.cpp ``CRKImage::CRKImage``; Rockchip U-Boot
tools/rockchip/boot_merger.c and boot_merger.h, which rkbin's boot_merger is built from):

- Header, packed little-endian, 102 bytes: tag ``BOOT`` (0x544F4F42; ``LDR `` 0x2052444C
  is accepted too), u16 size (102), u32 version (BCD major << 8 | minor), u32 merger
  version (0x01030000), 7-byte release time (u16 year, month, day, hour, minute, second),
  u32 chip type, then for 471, 472 and loader: u8 count, u32 offset, u8 entry size; then
  u8 sign flag, u8 RC4 flag, 57 reserved bytes. A real RK3399 loader starts
  ``42 4f 4f 54 66 00 50 02 00 00 00 00 03 01 e4 07`` (rkdeveloptool issue #50).
- Chip type: boot_merger ``getChipType`` falls back to ``convertChipType(chip + 2)``,
  the four characters after "RK" packed big-end first: RK3576 -> 0x33353736.
- Entry, 57 bytes: u8 size (57), u32 type (1 = 471, 2 = 472, 4 = loader), 20 UTF-16
  name characters (``getName``: the file name without extension, at most 19), u32 data
  offset, u32 data size, u32 delay (ms, rkdeveloptool sleeps after sending the entry).
- Data: 471 and 472 data are padded to 2048 bytes (``ENTRY_ALIGN``) and RC4-encrypted as
  one stream; loader entries (``FlashData``, ``FlashBoot``) are padded to 512
  (``SMALL_PACKET``) then 2048 and encrypted per 512-byte packet (``writeFile``). The
  key is 7C 4E 03 04 55 05 09 07 2D 2C 7B 38 17 0D 17 11 (``P_RC4``, crc.cpp). RC4 is
  applied whatever the header's RC4 flag says; the flag is 1 unless boot_merger runs
  with ``--rc4`` ("enable RC4 for IDB data"), and rkdeveloptool sends the entries as
  stored (``CRKBoot::GetEntryData`` copies the bytes).
- The file ends with CRC_32 of everything before it (table poly 0x04C10DB7, not
  reflected, initial 0), little-endian; rkdeveloptool refuses a file whose CRC differs
  (``CRKBoot::CrcCheck``) or whose name lacks ``.bin`` is read as an update image.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import attr

FILE_NAME = "rk3576_spl_loader_twin.bin"
TAG_BOOT = 0x544F4F42  # "BOOT"
TAG_LDR = 0x2052444C  # "LDR "
HEADER_SIZE = 102
ENTRY_SIZE = 57
MERGER_VERSION = 0x01030000
ENTRY_471, ENTRY_472, ENTRY_LOADER = 1, 2, 4
ENTRY_ALIGN = 2048
SMALL_PACKET = 512
RC4_KEY = bytes([124, 78, 3, 4, 85, 5, 9, 7, 45, 44, 123, 56, 23, 13, 23, 17])
# A fixed release time keeps the file byte-for-byte reproducible.
RELEASE_TIME = (2024, 10, 15, 10, 0, 0)
VERSION = (1, 9)  # printed nowhere by rkdeveloptool; real RK3576 loaders are v1.0x-v1.1x

# The twin's marker, at the start of every decrypted entry: b"TWIN-LOADER RK3576 471\n".
MARKER_PREFIX = b"TWIN-LOADER "
_MARKER = re.compile(rb"^TWIN-LOADER (RK[0-9A-Z]{4,6}) (471|472|FlashData|FlashBoot)\n")


class LoaderFormatError(ValueError):
    """The bytes are not a loader file in the RKBoot format."""


def _crc32_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C10DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC32 = _crc32_table()


def crc32_rk(data: bytes) -> int:
    """rkdeveloptool's CRC_32 (crc.cpp), which the loader file's last four bytes hold."""
    acc = 0
    for b in data:
        acc = ((acc << 8) & 0xFFFFFFFF) ^ _CRC32[(acc >> 24) ^ b]
    return acc


def rc4(data: bytes) -> bytes:
    """Rockchip's ``P_RC4``: RC4 with the fixed key, one fresh stream per call (its own inverse)."""
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + RC4_KEY[i % 16]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray(data)
    i = j = 0
    for x in range(len(out)):
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out[x] ^= s[(s[i] + s[j]) % 256]
    return bytes(out)


def rc4_packets(data: bytes) -> bytes:
    """RC4 per 512-byte packet, as boot_merger stores loader entries (``writeFile(fix=true)``)."""
    return b"".join(rc4(data[i:i + SMALL_PACKET]) for i in range(0, len(data), SMALL_PACKET))


def chip_type(chip: str) -> int:
    """boot_merger's ``convertChipType(chip + 2)``: "RK3576" -> 0x33353736."""
    code = chip[2:6].encode().ljust(4, b"\0")
    return struct.unpack(">I", code)[0]


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def _bcd(value: int) -> int:
    return ((value // 10 % 10) << 4) | (value % 10)


def marker(chip: str, role: str) -> bytes:
    return MARKER_PREFIX + f"{chip} {role}\n".encode()


def entry_chip(plain: bytes) -> str | None:
    """The SoC a decrypted twin entry was built for, or None for anything else."""
    m = _MARKER.match(plain)
    return m.group(1).decode() if m else None


def payload(chip: str, role: str, size: int) -> bytes:
    """An entry's plain content: the marker, then filler (the device runs none of it)."""
    head = marker(chip, role) + f"rk3576-hil twin {role.lower()} for {chip}; not executable\n".encode()
    return head + bytes(max(0, size - len(head)))


@attr.s(auto_attribs=True, frozen=True)
class Entry:
    """One entry of a loader file, its data decrypted."""

    kind: int
    name: str
    data: bytes
    delay: int = 0


def _name_field(name: str) -> bytes:
    return "".join(name[:19]).ljust(20, "\0").encode("utf-16-le")


def build(chip: str = "RK3576", *, tag: int = TAG_BOOT) -> bytes:
    """The bytes of a twin loader for ``chip``, laid out as boot_merger lays out a real one."""
    soc = chip.lower()
    entries = [
        Entry(ENTRY_471, f"{soc}_ddr_twin", payload(chip, "471", 3000), 1),
        Entry(ENTRY_472, f"{soc}_usbplug_twin", payload(chip, "472", 5000), 0),
        Entry(ENTRY_LOADER, "FlashData", payload(chip, "FlashData", 3000)),
        Entry(ENTRY_LOADER, "FlashBoot", payload(chip, "FlashBoot", 9000)),
    ]
    counts = {k: sum(1 for e in entries if e.kind == k) for k in (ENTRY_471, ENTRY_472, ENTRY_LOADER)}
    off471 = HEADER_SIZE
    off472 = off471 + counts[ENTRY_471] * ENTRY_SIZE
    offldr = off472 + counts[ENTRY_472] * ENTRY_SIZE
    header = struct.pack(
        "<IHII7sIBIBBIBBIBBB57s",
        tag, HEADER_SIZE, (_bcd(VERSION[0]) << 8) | _bcd(VERSION[1]), MERGER_VERSION,
        struct.pack("<HBBBBB", *RELEASE_TIME), chip_type(chip),
        counts[ENTRY_471], off471, ENTRY_SIZE,
        counts[ENTRY_472], off472, ENTRY_SIZE,
        counts[ENTRY_LOADER], offldr, ENTRY_SIZE,
        0, 1, bytes(57),
    )  # fmt: skip
    assert len(header) == HEADER_SIZE
    table, blobs = [], []
    offset = offldr + counts[ENTRY_LOADER] * ENTRY_SIZE
    for e in entries:
        if e.kind == ENTRY_LOADER:
            stored = rc4_packets(e.data.ljust(_align(_align(len(e.data), SMALL_PACKET), ENTRY_ALIGN), b"\0"))
        else:
            stored = rc4(e.data.ljust(_align(len(e.data), ENTRY_ALIGN), b"\0"))
        table.append(struct.pack("<BI40sIII", ENTRY_SIZE, e.kind, _name_field(e.name), offset, len(stored), e.delay))
        blobs.append(stored)
        offset += len(stored)
    body = header + b"".join(table) + b"".join(blobs)
    return body + struct.pack("<I", crc32_rk(body))


def write(dest_dir: Path, chip: str = "RK3576", name: str | None = None) -> Path:
    """Write a twin loader into ``dest_dir``: ``rk3576_spl_loader_twin.bin`` for the RK3576."""
    path = Path(dest_dir) / (name or FILE_NAME.replace("rk3576", chip.lower()))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = build(chip)
    if not path.is_file() or path.read_bytes() != data:
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path


@attr.s(auto_attribs=True, frozen=True)
class LoaderFile:
    """A parsed loader file, as rkdeveloptool's CRKBoot reads it."""

    tag: int
    chip_type: int
    rc4_flag: int
    entries: tuple[Entry, ...]

    def of_kind(self, kind: int) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]


def parse(data: bytes) -> LoaderFile:
    """Read a loader file; entries come back decrypted (twin files and real ones alike)."""
    if len(data) < HEADER_SIZE + 4:
        raise LoaderFormatError("shorter than a loader header")
    if struct.unpack("<I", data[-4:])[0] != crc32_rk(data[:-4]):
        raise LoaderFormatError("CRC_32 at the end does not match")
    f = struct.unpack("<IHII7sIBIBBIBBIBBB57s", data[:HEADER_SIZE])
    tag, chip, rc4_flag = f[0], f[5], f[16]
    if tag not in (TAG_BOOT, TAG_LDR):
        raise LoaderFormatError(f"tag 0x{tag:08x} is neither BOOT nor LDR")
    entries = []
    for count, offset, size in ((f[6], f[7], f[8]), (f[9], f[10], f[11]), (f[12], f[13], f[14])):
        for i in range(count):
            raw = data[offset + i * size: offset + i * size + ENTRY_SIZE]
            _, kind, name, doff, dsize, delay = struct.unpack("<BI40sIII", raw)
            stored = data[doff: doff + dsize]
            plain = rc4_packets(stored) if kind == ENTRY_LOADER else rc4(stored)
            entries.append(Entry(kind, name.decode("utf-16-le").split("\0")[0], plain, delay))
    return LoaderFile(tag, chip, rc4_flag, tuple(entries))
