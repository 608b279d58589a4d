"""Arguments for, and the output of, Rockchip's USB flashing tools: rkdeveloptool and upgrade_tool.

Pure code, no I/O: the labgrid drivers run the commands and hand the output here. Every
parser turns a failure into a ``FlashToolError`` subclass whose message names the cause and
what to do about it, so a failed flash in a report reads as a diagnosis, not as a tool dump.

The strings are the tools' own: rkdeveloptool 1.32 (``main.cpp``; errors are wrapped in the
colour escapes ``ESC[30;41m`` .. ``ESC[0m``, progress lines are redrawn with ``ESC[1A ESC[2K``)
and the closed-source upgrade_tool as seen in vendor documentation.
"""

from __future__ import annotations

import dataclasses
import errno as errnomod
import os
import re
import struct

from hil.rockchip.text import clean_text

RK_VID = 0x2207
RK3576_PID = 0x350E

#: Rockusb PIDs of other Rockchip SoCs, to say which board is on the cable instead.
SOC_BY_PID = {
    0x350A: "RK3566/RK3568",
    0x350B: "RK3588",
    0x350C: "RK3528",
    0x350D: "RK3562",
    0x350E: "RK3576",
    0x350F: "RK3506",
    0x330C: "RK3399",
    0x330D: "PX30",
    0x330E: "RK3308",
    0x320C: "RK3328",
    0x320A: "RK3288",
    0x110C: "RV1106",
}

#: ``rkdeveloptool cs`` codes.
STORAGE_CODES = {"emmc": 1, "sd": 2, "spinor": 9}

SECTOR = 512
TAIL_CHARS = 1500

_DEVICE_LINE = re.compile(
    r"DevNo=(?P<devno>\d+)\s+Vid=0x(?P<vid>[0-9a-fA-F]+),\s*Pid=0x(?P<pid>[0-9a-fA-F]+),"
    r"\s*LocationID=(?P<location>[0-9a-fA-F]+)\s+(?:Mode=)?(?P<mode>\w+)(?:\s+SerialNo=(?P<serial>\S*))?"
)
_PERCENT = re.compile(r"Write LBA from file \((\d+)%\)")
_UF_PERCENT = re.compile(r"Download Image\.\.\. ?\((\d+)%\)")
_UF_STAGE = re.compile(r"^(?P<stage>[A-Z][A-Za-z ]*?) (?P<state>Start|Success|Fail)[ \t]*$", re.M)
_OPEN_FAILED = re.compile(r"Write LBA failed, err=(-?\d+), can't open file: (.*)")
_VERSION = re.compile(r"rkdeveloptool ver (\S+)")

NOT_IN_LOADER_HINT = (
    "the board is not in loader mode: hold MASKROM (or have the relay wired to it pressed) while "
    "powering it on, or run 'reboot loader' on the board; check the USB cable is in the board's "
    "OTG/download port and the host side is connected"
)


# --- errors ------------------------------------------------------------------------------
class FlashToolError(RuntimeError):
    """A flashing step failed; the message says why and what to do, ``output`` keeps the tool's words."""

    def __init__(self, message: str, *, output: str = ""):
        tail = output.strip()[-TAIL_CHARS:]
        super().__init__(f"{message}\n--- tool output ---\n{tail}" if tail else message)
        self.output = output


class NoLoaderDevice(FlashToolError):
    """No rockusb device: the board is not in Maskrom or Loader mode."""


class LoaderTimeout(NoLoaderDevice, TimeoutError):
    """The rockusb device did not appear in time (also a TimeoutError, like the bench's driver)."""


class TooManyDevices(FlashToolError):
    """More than one rockusb device on the host; the tools cannot choose one."""


class WrongSoC(FlashToolError):
    """The rockusb device is a Rockchip SoC other than the RK3576."""


class WrongDevice(FlashToolError):
    """The tool sees a rockusb device, but not at the USB port of this target's loader resource."""


class UsbAccessError(FlashToolError):
    """The tool found the device but could not open it (permissions, or another process holds it)."""


class WrongMode(FlashToolError):
    """The command does not work in the mode the board is in (Maskrom vs. Loader)."""


class LoaderFileError(FlashToolError):
    """The loader file could not be read as a Rockchip loader."""


class LoaderDownloadFailed(FlashToolError):
    """The BootROM did not accept or start the downloaded loader."""


class StorageSelectFailed(FlashToolError):
    """``cs`` failed: no such storage, or the running loader cannot switch storage."""


class ImageOpenFailed(FlashToolError):
    """The tool could not open the image file on the host it runs on."""


class WriteFailed(FlashToolError):
    """Writing the image stopped before 100 %."""


class ResetFailed(FlashToolError):
    """The board did not accept the reset command."""


class UpgradeFailed(FlashToolError):
    """``upgrade_tool uf`` failed in one of its stages; ``stage`` names it."""

    def __init__(self, message: str, *, stage: str | None = None, output: str = ""):
        super().__init__(message, output=output)
        self.stage = stage


class ToolFailed(FlashToolError):
    """The tool failed in a way not recognised here, or its output made no sense."""


class ToolMissing(FlashToolError):
    """The tool is not installed where the loader resource is."""


class ToolTimeout(FlashToolError, TimeoutError):
    """The tool ran longer than its time limit and was stopped."""


# --- devices -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RockusbDevice:
    """One line of ``ld``: a Rockchip SoC in Maskrom (BootROM) or Loader (U-Boot rockusb) mode."""

    devno: int
    vid: int
    pid: int
    location: str  # as printed; rkdeveloptool prints (bus << 8) + port in hex
    mode: str  # "Maskrom", "Loader" or "Unknown"
    serial: str | None = None  # upgrade_tool only

    @property
    def soc(self) -> str:
        if self.vid != RK_VID:
            return "not a Rockchip device"
        return SOC_BY_PID.get(self.pid, "unknown Rockchip SoC")

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    def bus_port(self) -> tuple[int, int]:
        """Bus and port from an rkdeveloptool LocationID (``libusb`` bus number << 8 | port number)."""
        value = int(self.location, 16)
        return value >> 8, value & 0xFF


def clean(output: str | bytes) -> str:
    """The tool's output as text (processwrapper hands over bytes), cleaned by ``clean_text``.

    The redraws (``ESC[1A ESC[2K`` before each progress line) go with the escapes, so every
    progress state stays on a line of its own and the parsers read the last one."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    return clean_text(output)


def parse_ld(output: str | bytes) -> list[RockusbDevice]:
    """Devices listed by ``rkdeveloptool ld`` or ``upgrade_tool ld``; [] when there are none."""
    text = clean(output)
    devices = [
        RockusbDevice(devno=int(m["devno"]), vid=int(m["vid"], 16), pid=int(m["pid"], 16),
                      location=m["location"], mode=m["mode"], serial=m["serial"])
        for m in _DEVICE_LINE.finditer(text)
    ]
    if devices:
        return devices
    none_found = ("not found any devices!", "No found any rockusb device", "List of rockusb connected(0)",
                  "Did not find any rockusb device")
    if any(s in text for s in none_found):
        return []
    raise ToolFailed("'ld' printed neither devices nor 'not found any devices!': the tool did not run "
                     "properly (wrong program under that name, or libusb failed to initialise)", output=text)


def select_rk3576(devices: list[RockusbDevice], *, output: str = "") -> RockusbDevice:
    """The single RK3576 rockusb device; the tools have no option to pick one of several."""
    if not devices:
        raise NoLoaderDevice(f"no rockusb device ({RK_VID:04x}:{RK3576_PID:04x}) found: {NOT_IN_LOADER_HINT}",
                             output=output)
    if len(devices) > 1:
        listed = ", ".join(f"{d.usb_id} {d.soc} at LocationID {d.location} ({d.mode})" for d in devices)
        raise TooManyDevices(
            f"{len(devices)} rockusb devices on this host ({listed}); rkdeveloptool and upgrade_tool have no "
            "option to choose one and refuse to work: keep only one board per host in loader mode at a time "
            "(serialise flashing per exporter) or move boards to separate hosts", output=output)
    device = devices[0]
    if (device.vid, device.pid) != (RK_VID, RK3576_PID):
        raise WrongSoC(
            f"the rockusb device is {device.usb_id} ({device.soc}), not an RK3576 "
            f"({RK_VID:04x}:{RK3576_PID:04x}): wrong board on this place, or its USB cable goes to another board",
            output=output)
    if device.mode not in ("Maskrom", "Loader"):
        raise ToolFailed(f"the RK3576 is in an unknown rockusb mode ({device.mode!r}): power-cycle it into "
                         "Maskrom", output=output)
    return device


def usb_port_of_path(path: str | None) -> int | None:
    """The last port number in a sysfs USB device name such as ``1-3.2`` (None if not a port path)."""
    if not path or "-" not in path:
        return None
    try:
        return int(path.rsplit("-", 1)[1].split(".")[-1])
    except ValueError:
        return None


def check_location(device: RockusbDevice, busnum: int | None, path: str | None, *, output: str = "") -> None:
    """Fail if the device rkdeveloptool sees is not at the USB port of the target's loader resource.

    rkdeveloptool cannot be pointed at a device, so this is how a flash is kept off another board
    that happens to be the only one in loader mode on a shared host.
    """
    port = usb_port_of_path(path)
    if busnum is None or port is None:
        return  # the resource does not know where the device is (yet); nothing to compare
    bus, dev_port = device.bus_port()
    if (bus, dev_port) != (busnum, port):
        raise WrongDevice(
            f"rkdeveloptool sees the rockusb device at bus {bus} port {dev_port} (LocationID {device.location}), "
            f"but this target's loader is at bus {busnum} path {path}: another board on this host is in loader "
            "mode and this one is not; it would be flashed instead", output=output)


# --- argument lists ----------------------------------------------------------------------
def ld_args() -> list[str]:
    return ["ld"]


def version_args() -> list[str]:
    return ["-v"]


def db_args(loader: str) -> list[str]:
    return ["db", loader]


def cs_args(storage: str) -> list[str]:
    try:
        return ["cs", str(STORAGE_CODES[storage])]
    except KeyError:
        raise ValueError(f"unknown storage {storage!r}; one of {', '.join(STORAGE_CODES)}") from None


def wl_args(image: str, lba: int = 0) -> list[str]:
    return ["wl", str(lba), image]


def rd_args() -> list[str]:
    return ["rd"]


def uf_args(image: str) -> list[str]:
    return ["uf", image]


# --- rkdeveloptool results ---------------------------------------------------------------
def _raise_common_failure(text: str, command: str) -> None:
    """Raise for a failure any rkdeveloptool command can report before doing its own work."""
    if "Did not find any rockusb device" in text or "No found any rockusb device" in text:
        raise NoLoaderDevice(f"'{command}': no rockusb device: {NOT_IN_LOADER_HINT}", output=text)
    if "Found too many rockusb devices" in text:
        raise TooManyDevices(f"'{command}': more than one rockusb device on this host and rkdeveloptool cannot "
                             "choose: keep only one board per host in loader mode at a time", output=text)
    if re.search(r"creating comm(?:unication)? object failed", text, re.I) or \
            "Getting information about rockusb device failed" in text:
        raise UsbAccessError(
            f"'{command}': the tool found the device but could not open it: no permission on the USB device "
            "(install the rockusb udev rule, e.g. 99-rk-rockusb.rules, or run as a user with access) or another "
            "rkdeveloptool/upgrade_tool holds it", output=text)
    if re.search(r"(?:does|did) not support this operation", text, re.I):
        if command.startswith("db"):
            why = "the board is in Loader mode (U-Boot rockusb) and db only works in Maskrom"
        else:
            why = "the board is in Maskrom and needs the loader downloaded (db) first"
        raise WrongMode(f"'{command}': the device refused the command: {why}", output=text)


def check_db(output: str | bytes, loader: str = "the loader") -> None:
    """``db <loader>``: the BootROM runs the DRAM init and usbplug from the loader file."""
    text = clean(output)
    if "Downloading bootloader succeeded." in text:
        return
    if "Opening loader failed" in text:
        raise LoaderFileError(
            f"rkdeveloptool could not read {loader} as a Rockchip loader: wrong path, or not a packed loader "
            "(use rk3576_spl_loader_v*.bin from rkbin, not idbloader.img or u-boot.itb)", output=text)
    _raise_common_failure(text, "db")
    if "Downloading bootloader failed!" in text:
        raise LoaderDownloadFailed(
            f"the board did not accept {loader}: it is not the loader for this SoC (an RK3576 needs "
            "rk3576_spl_loader_v*.bin) or DRAM init failed; power-cycle into Maskrom and retry with the "
            "right file", output=text)
    raise ToolFailed("'db' printed no result: unexpected rkdeveloptool output", output=text)


def check_cs(output: str | bytes, storage: str) -> None:
    """``cs <code>``: select the storage that ``wl`` writes to."""
    text = clean(output)
    if "Change Storage OK." in text:
        return
    command = " ".join(cs_args(storage))
    _raise_common_failure(text, command)
    raise StorageSelectFailed(
        f"the loader could not switch to {storage} ('{command}'): the board has no {storage}, or the loader "
        "running on it cannot select storage (U-Boot rockusb in Loader mode; set storage to null to write to "
        "the storage it exposes), or this rkdeveloptool predates 'cs' (needs 1.32)", output=text)


def write_progress(output: str | bytes) -> int | None:
    """The last ``Write LBA from file (NN%)`` value, None if there was none."""
    values = _PERCENT.findall(clean(output))
    return int(values[-1]) if values else None


def check_wl(output: str | bytes) -> None:
    """``wl <lba> <file>``: there is no success line, only progress that must reach 100 %."""
    text = clean(output)
    opened = _OPEN_FAILED.search(text)
    if opened:
        code, path = int(opened[1]), opened[2].strip()
        reason = os.strerror(code) if code > 0 else "unknown error"
        where = ("the file is missing there" if code == errnomod.ENOENT else
                 "the tool's user cannot read it" if code == errnomod.EACCES else reason)
        raise ImageOpenFailed(
            f"rkdeveloptool could not open the image {path} (errno {code}, {reason}): {where}; with a remote "
            "exporter, check that the copy under /var/cache/labgrid arrived and is readable", output=text)
    _raise_common_failure(text, "wl")
    percent = write_progress(text)
    if "Write LBA failed!" in text or (percent is not None and percent < 100):
        at = f"at {percent}%" if percent is not None else "before the first block"
        raise WriteFailed(
            f"writing the image failed {at}: the USB link dropped (cable, hub, board power) or the storage "
            "rejected the write (image larger than the storage, missing or worn eMMC); power-cycle into loader "
            "mode and flash again", output=text)
    if percent is None:
        raise ToolFailed("'wl' printed no progress: the image is empty or the tool is not rkdeveloptool",
                         output=text)


def check_rd(output: str | bytes) -> None:
    """``rd``: leave the loader and boot from storage."""
    text = clean(output)
    if "Reset Device OK." in text:
        return
    _raise_common_failure(text, "rd")
    if "Reset Device failed!" in text:
        raise ResetFailed("the board did not accept the reset command: power-cycle it to boot the new image",
                          output=text)
    raise ToolFailed("'rd' printed no result: unexpected tool output", output=text)


def parse_version(output: str | bytes) -> str:
    """``rkdeveloptool -v`` -> "1.32"."""
    text = clean(output)
    match = _VERSION.search(text)
    if not match:
        raise ToolFailed("'-v' did not print 'rkdeveloptool ver ...': the program is not rkdeveloptool",
                         output=text)
    return match[1]


# --- upgrade_tool results ----------------------------------------------------------------
UF_STAGE_HINTS = {
    "Download Boot": "the loader inside update.img does not start on this board: the package was built for "
                     "another SoC, or the USB link is unreliable",
    "Wait For Maskrom": "the board did not come back on USB after the loader started: cable or hub, or the "
                        "loader's DRAM init failed",
    "Wait For Loader": "the board did not come back on USB in Loader mode: cable or hub, or the loader crashed",
    "Test Device": "the board does not answer on USB: cable, hub or a crashed loader; power-cycle into Maskrom",
    "Check Chip": "update.img is for another SoC than this board (an RK3576 package is needed)",
    "Get FlashInfo": "the loader found no usable storage: eMMC missing, dead, or not supported by this loader",
    "Prepare IDB": "preparing the ID block (boot loader area) failed: the loader in update.img does not match "
                   "the storage",
    "Download IDB": "writing the ID block (boot loader area) failed: storage error or USB link dropped",
    "Download Firmware": "writing the partitions failed: USB link dropped, or an image in the package is larger "
                         "than its partition in parameter.txt",
}


def uf_stages(output: str | bytes) -> list[tuple[str, str]]:
    """(stage, "Start" | "Success" | "Fail") in the order upgrade_tool printed them."""
    return [(m["stage"], m["state"]) for m in _UF_STAGE.finditer(clean(output))]


def check_uf(output: str | bytes) -> None:
    """``upgrade_tool uf update.img``: success only with ``Upgrade firmware ok.``."""
    text = clean(output)
    if "Upgrade firmware ok." in text:
        return
    if "No found any rockusb device" in text or "Did not find any rockusb device" in text:
        raise NoLoaderDevice(f"'uf': no rockusb device: {NOT_IN_LOADER_HINT}", output=text)
    stages = uf_stages(text)
    failed = next((stage for stage, state in stages if state == "Fail"), None)
    if failed:
        percents = _UF_PERCENT.findall(text)
        at = f" at {percents[-1]}%" if failed == "Download Firmware" and percents else ""
        hint = UF_STAGE_HINTS.get(failed, "see the tool output")
        raise UpgradeFailed(f"upgrade_tool failed in '{failed}'{at}: {hint}", stage=failed, output=text)
    last = stages[-1][0] if stages else None
    if last:
        raise UpgradeFailed(f"upgrade_tool stopped after '{last}' without 'Upgrade firmware ok.': it was "
                            "interrupted or lost the board; power-cycle into loader mode and flash again",
                            stage=last, output=text)
    if "Loading firmware" in text:
        raise UpgradeFailed("upgrade_tool could not load the firmware package: the file is not a Rockchip "
                            "update.img (RKFW), or it is truncated", stage="Loading firmware", output=text)
    raise ToolFailed("'uf' printed no stage: unexpected upgrade_tool output", output=text)


# --- images ------------------------------------------------------------------------------
def gpt_partition(head: bytes, name: str) -> tuple[int, int] | None:
    """First and last LBA of the GPT partition called ``name``, from the image's first sectors.

    ``head`` should hold at least LBA 0..33 (protective MBR, header, 128 entries). None when
    there is no GPT there or no such partition.
    """
    header = head[SECTOR:2 * SECTOR]
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    start = entries_lba * SECTOR
    for index in range(count):
        entry = head[start + index * size:start + (index + 1) * size]
        if len(entry) < 128:
            break
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        label = entry[56:128].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        if label == name:
            return first, last
    return None


def userdata_fate(head: bytes, image_size: int) -> str:
    """What ``wl 0 <image>`` does to the board's userdata partition.

    "overwritten": the partition starts inside the image, so the image's content replaces it;
    "kept": it starts after the image ends, so the old data stays (if the layout is unchanged);
    "unknown": the image has no GPT with a userdata partition.
    """
    extent = gpt_partition(head, "userdata")
    if extent is None:
        return "unknown"
    return "overwritten" if extent[0] * SECTOR < image_size else "kept"
