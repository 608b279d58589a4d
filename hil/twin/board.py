"""One virtual RK3576 board: QEMU behind a power switch, a UART, an Ethernet port and
Rockchip's USB loader mode.

Power on is a cold boot of QEMU from whatever image is "in eMMC"; power off kills QEMU
outright (no shutdown), as pulling a PDU outlet does. ``reboot loader`` in the guest, or
the maskrom button held at power on, leaves the board in the rockusb loader instead of
booting; only then does the flash service accept an image.

Guest RAM is a file in the board's work dir (``dram``), kept while QEMU restarts after a
reset the guest asks for (reboot, a panic with ``kernel.panic`` set, the watchdog) or a
spontaneous reboot, and deleted when the power goes: a warm reset keeps RAM, a power cut does
not. QEMU gives the guest ``memory_mb`` + 256 MiB; the kernel is told ``mem=<memory_mb>M``
(so it sees exactly ``memory_mb`` as before), the first MiB above that is ramoops's
(``ramoops.*`` on the kernel command line, given to ``insmod ramoops.ko`` by the guest's rcS as
modprobe would), and U-Boot relocates itself to the top, well above it. The build caps U-Boot's
``initrd_high``/``fdt_high`` at the kernel's top for the default 2048 MiB (``hil.twin.build``), so
initrd and device tree stay where the kernel sees them.

The ``boot-fail`` fault makes a seeded share of QEMU starts stop at a chosen stage (see
``BootFail``): the board draws at every start, and ``status()["boot_failures"]`` lists the boots
it made fail.

The eMMC's user area is a sparse raw disk (``emmc/disk.img``): an image flashed through the
flash service or provisioned is written there from LBA 0 as well, and the real rkdeveloptool
writes it there through the board's Rockusb device (``hil.twin.boardusb``); leaving the loader
boots what LBA 0 holds, and a disk with no bootable image there leaves the board in Maskrom, as
a BootROM that finds nothing to boot does. ``emmc/`` also keeps the unpacked kernel, initramfs
and command line QEMU boots, and the userdata partition.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from hil.twin import firmware
from hil.twin.console import ConsoleServer
from hil.twin.rockusb import RawDisk

log = logging.getLogger("hil.twin.board")

# What the bench can switch on at run time. Guest faults are passed to the guest agent.
HOST_FAULTS = {"boot-hang", "serial-garbage", "spontaneous-reboot", "pdu-hang", "boot-fail"}
GUEST_FAULTS = {"kernel-panic", "ssh-down", "decode-slow", "oom-kill", "userdata-full", "thermal-throttle",
                "rknn-slow", "rknn-answer", "demo-leak", "npu-heating", "npu-timeout", "reboot-panic"}
FAULTS = HOST_FAULTS | GUEST_FAULTS
# What each fault's argument is: None for an on/off fault (no argument, or 1), a text for an
# argument of its own form (checked by ``check_fault_value``: the words of ``FAULT_WORDS``, or
# boot-fail's PCT:STAGE[:SEED]), else (what it is, lowest, highest, whether the lowest itself is
# allowed) for a plain decimal number. Checked when a fault is set, so a value that power-on,
# the console or the guest could not use is refused then, not stored.
FAULT_ARGUMENTS: dict[str, tuple[str, float, float, bool] | str | None] = {
    "boot-hang": None,
    "pdu-hang": None,  # the outlet accepts the connection and never answers (see hil/twin/api.py)
    "kernel-panic": "1 (the kernel panics and hangs, as panic=0 keeps it) or reset (it panics and resets "
                    "itself 1 s later: RAM and the ramoops record in /sys/fs/pstore survive)",
    "boot-fail": "PCT:STAGE or PCT:STAGE:SEED: PCT percent of the board's boots (a number above 0, at most "
                 "100), drawn with seed SEED (a whole number, 1 when left out), stop at STAGE, one of uboot, "
                 "kernel, init, network, npu",
    "ssh-down": None,
    "oom-kill": None,
    "userdata-full": None,
    "thermal-throttle": None,
    "serial-garbage": ("a percent of console output chunks that get line noise: a number above 0, at most 100 "
                       "(1 stands for the default, 30)", 0.0, 100.0, False),
    "spontaneous-reboot": ("the seconds from power-on to the reset: a number above 0, at most a year "
                           "(1 when left out)", 0.0, 365 * 86400.0, False),
    "decode-slow": ("a percent by which decoding slows down: a number from 0 to 100 (above 95 counts as 95)",
                    0.0, 100.0, True),
    "demo-leak": ("the MiB the RKLLM demo keeps for good per answered turn: a number above 0, at most 256 "
                  "(1 when left out)", 0.0, 256.0, False),
    "npu-heating": ("the seconds with the NPU busy before the SoC crosses its trip and the NPU clock is capped: "
                    "a number from 0 to a day, counted to the millisecond (1 when left out)",
                    0.0, 86400.0, True),
    "npu-timeout": None,  # every NPU job the stand-ins start times out once and is recovered by a soft reset
    "reboot-panic": None,  # every warm reboot panics while the old system goes down, and resets itself
    "rknn-slow": None,  # MODEL_FAULTS
    "rknn-answer": None,
}
# Faults of the twin's RKNN tools that name a vision model (the .rknn's stem) or apply to all.
MODEL_FAULTS = {
    "rknn-slow": "a percent by which rknn_benchmark slows down (0 to 95), for every model, or MODEL:PERCENT for "
                 "one vision model (its .rknn's stem)",
    "rknn-answer": "1 (every vision model answers differently) or the name of one vision model (its .rknn's stem)",
}
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Faults whose argument is one of a few words.
FAULT_WORDS = {"kernel-panic": ("1", "reset")}
# The stages a boot-fail boot stops at, in boot order (hil.rockchip.bootlog.STAGES from uboot on, and two
# after login), with what such a boot shows (in the guest, hil/twin/guest/rootfs/usr/libexec/twin/boot-fault):
#   uboot    U-Boot runs, rejects the kernel it loads ("Bad Linux ARM64 Image magic!") and goes on to its
#            other boot targets; no kernel starts
#   kernel   the kernel starts and panics before any init runs (rdinit=/nonexistent: no root to mount)
#   init     rcS runs (the guest agent too); no console login, no network, so no SSH, no NPU driver
#   network  the console login comes; eth0 stays down and dropbear never starts (SSH never answers), no NPU driver
#   npu      everything is up but the rknpu driver is never loaded (no /sys/kernel/debug/rknpu, /proc/rknpu)
BOOT_FAIL_STAGES = ("uboot", "kernel", "init", "network", "npu")
_SEED = re.compile(r"[0-9]{1,18}")  # not negative: random.Random(-n) draws as random.Random(n)
# Guest RAM layout (QEMU virt: RAM from 0x40000000). The kernel gets memory_mb; HIDDEN_RAM_MB more above it
# hold ramoops (its first RAMOOPS_SIZE bytes) and U-Boot, which relocates itself to the top of RAM.
RAM_BASE = 0x4000_0000
HIDDEN_RAM_MB = 256
RAMOOPS_SIZE = 0x10_0000  # 1 MiB
# At most 128 KiB per oops/panic record: ramoops keeps its default 4 KiB each for console, ftrace and pmsg (no
# front end uses them in Debian's kernel), so 7 dmesg records of 145 KiB fill the rest.
RAMOOPS_RECORD_SIZE = 0x2_0000
USERDATA_SIZE = 512 * 1024 * 1024
EMMC_SECTORS = 16 * 1024 * 1024  # 8 GiB, sparse
RKUSB_ID = {"vid": "0x2207", "pid": "0x350e"}
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class BoardError(RuntimeError):
    """A request the board cannot honour in its present state; the message says why."""


class FaultArgumentError(ValueError):
    """A fault's argument of the wrong kind; the message says what the fault takes."""


class BootFail:
    """The boot-fail fault's draw: ``pct`` percent of boots stop at ``stage``, drawn from
    ``random.Random(seed)``, one draw per QEMU start, so equal values give equal sequences of
    failed boots (``plan``)."""

    def __init__(self, pct: float, stage: str, seed: int = 1) -> None:
        self.pct, self.stage, self.seed = pct, stage, seed
        self._rng = random.Random(seed)
        self.boots = 0

    @classmethod
    def parse(cls, value: str) -> BootFail:
        """From a checked value (``check_fault_value``)."""
        pct, stage, *seed = value.split(":")
        return cls(float(pct), stage, int(seed[0]) if seed else 1)

    def draw(self) -> str | None:
        """The next boot: the stage it stops at, or None for a good boot."""
        self.boots += 1
        return self.stage if self._rng.random() * 100 < self.pct else None

    @classmethod
    def plan(cls, value: str, boots: int) -> list[int]:
        """The numbers (from 1) of the boots among the first ``boots`` that ``value`` makes fail."""
        draw = cls.parse(check_fault_value("boot-fail", value))
        return [n for n in range(1, boots + 1) if draw.draw()]


def fault_takes(name: str) -> str:
    """What ``name``'s argument is, for messages and help."""
    if name in MODEL_FAULTS:
        return MODEL_FAULTS[name]
    spec = FAULT_ARGUMENTS.get(name)
    if spec is None:
        return "no argument (or 1): it is on or off"
    return spec if isinstance(spec, str) else spec[0]


def check_fault_value(name: str, value: str | None) -> str:
    """``value`` (text; None or empty for none given) as fault ``name`` stores it, or
    ``FaultArgumentError`` saying what the fault takes; ``BoardError`` for an unknown fault."""
    if name not in FAULTS:
        raise BoardError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
    text = "1" if value is None or not str(value).strip() else str(value).strip()
    spec = FAULT_ARGUMENTS[name]
    shown = text if len(text) <= 40 else text[:37] + "..."
    if name in MODEL_FAULTS:
        model, _, percent = text.rpartition(":") if name == "rknn-slow" else (text, "", "")
        ok = (not model or _MODEL.fullmatch(model)) and (
            name == "rknn-answer" and _MODEL.fullmatch(text)
            or name == "rknn-slow" and _DECIMAL.fullmatch(percent) and float(percent) <= 95)
        if not ok:
            raise FaultArgumentError(f"fault {name} takes {fault_takes(name)}; not {shown!r}")
        return text
    if name in FAULT_WORDS:
        if text not in FAULT_WORDS[name]:
            raise FaultArgumentError(f"fault {name} takes {fault_takes(name)}; not {shown!r}")
        return text
    if name == "boot-fail":
        _check_boot_fail(text, shown)
        return text
    if spec is None:
        if text != "1":
            raise FaultArgumentError(f"fault {name} takes {fault_takes(name)}, not {shown!r}")
        return text
    what, low, high, low_allowed = spec
    # a plain decimal only (no sign, exponent, inf or nan): the guest's shell reads it too
    number = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not (low <= number <= high) or (number == low and not low_allowed):
        raise FaultArgumentError(f"fault {name} takes {what}; not {shown!r}")
    return text


def _check_boot_fail(text: str, shown: str) -> None:
    parts = text.split(":")
    why = None
    if len(parts) not in (2, 3):
        why = "it needs PCT:STAGE or PCT:STAGE:SEED"
    elif not (_DECIMAL.fullmatch(parts[0]) and 0 < float(parts[0]) <= 100):
        why = f"PCT {parts[0]!r} is not a number above 0 and at most 100"
    elif parts[1] not in BOOT_FAIL_STAGES:
        why = f"STAGE {parts[1]!r} is none of {', '.join(BOOT_FAIL_STAGES)}"
    elif len(parts) == 3 and not _SEED.fullmatch(parts[2]):
        why = f"SEED {parts[2]!r} is not a whole number"
    if why:
        raise FaultArgumentError(f"fault boot-fail takes {fault_takes('boot-fail')}; not {shown!r}: {why}")


class VirtualBoard:
    def __init__(self, index: int, workdir: Path, *, host: str, console_port: int, ssh_port: int,
                 uboot: Path, timescale: float = 1.0, qemu: str = "qemu-system-aarch64",
                 smp: int = 2, memory_mb: int = 2048) -> None:
        self.index = index
        self.workdir = Path(workdir)
        self.host, self.console_port, self.ssh_port = host, console_port, ssh_port
        self.uboot, self.timescale, self.qemu = Path(uboot), timescale, qemu
        self.smp, self.memory_mb = smp, memory_mb
        self.emmc = self.workdir / "emmc"
        self.run = self.workdir / "run"
        self.ram = self.workdir / "dram"  # guest RAM: kept across a reset, deleted when the power goes
        self.disk = RawDisk(self.emmc / "disk.img", capacity=EMMC_SECTORS)
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._serial: socket.socket | None = None
        self._ctl: socket.socket | None = None
        self._generation = 0  # bumps on every QEMU start, so stale threads know to stop
        self.power = False
        self.maskrom_button = False
        self.mode = "off"  # off | booting | running | maskrom | loader
        self.loader_ready = False  # maskrom needs the loader downloaded (db) before writes
        self.faults: dict[str, str] = {}
        # Guest faults cleared while the guest could not be told (off, booting): told at its
        # next "hello". userdata-full leaves its fill file on the eMMC, so a lost clear would
        # keep /userdata full at every later boot.
        self._pending_clears: set[str] = set()
        self.boots = 0
        self.rockusb_sectors_written = 0  # by the real tool through the Rockusb device (hil.twin.boardusb)
        self._reboot_timer: threading.Timer | None = None
        self._loader_requested = -1  # generation whose guest asked for "reboot loader"
        self._boot_fail: BootFail | None = None
        # The boots the boot-fail fault made fail since it was last set ({"boot": n counted from 1 at the
        # first QEMU start after it was set, "stage": s}); kept after a clear, so a test can still compare.
        self.boot_failures: list[dict] = []
        self.boot_fail_boots = 0  # QEMU starts drawn for since it was last set (kept after a clear too)
        self.console = ConsoleServer(host, console_port, self.write_serial)

    # -- eMMC ---------------------------------------------------------------------------
    @property
    def image(self) -> dict | None:
        path = self.emmc / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_image(self, data_path: Path, *, wipe_userdata: bool = False) -> dict:
        """``wl 0``: only in loader mode; the image is verified before anything is written."""
        with self._lock:
            if self.mode not in ("maskrom", "loader"):
                raise BoardError(
                    f"board {self.index} is not in loader mode (no rockusb device): "
                    "enter it with 'reboot loader' on the board or the maskrom button and a power cycle"
                )
            if self.mode == "maskrom" and not self.loader_ready:
                raise BoardError(f"board {self.index} is in maskrom: download the loader (db) before writing")
            image = firmware.read(data_path)  # raises FirmwareError with the reason
            self._write_disk(data_path)
            self._install(image, wipe_userdata)
            return image["manifest"]

    def _write_disk(self, data_path: Path) -> None:
        """The image's bytes at LBA 0 of the raw eMMC, as ``wl 0`` leaves them."""
        with open(data_path, "rb") as f:
            lba = 0
            while chunk := f.read(4 << 20):
                self.disk.write(lba, chunk)
                lba += len(chunk) // 512

    def boot_from_disk(self) -> None:
        """Leave the loader and boot what LBA 0 of the raw eMMC holds (after the real tool's ``rd``);
        a disk with no bootable image there leaves the board in Maskrom, as the BootROM does."""
        with self._lock:
            try:
                image = firmware.read(self.disk.path)
            except firmware.FirmwareError as e:
                log.warning("board %d: nothing bootable at LBA 0 (%s): the BootROM stays in Maskrom", self.index, e)
                self.mode, self.loader_ready = "maskrom", False
                return
            self._install(image, wipe_userdata=False)
            self.mode, self.loader_ready = "off", False
            self._start_qemu()

    def _install(self, image: dict, wipe_userdata: bool) -> None:
        self.emmc.mkdir(parents=True, exist_ok=True)
        for name, key in (("Image", "kernel"), ("initrd.img", "initrd")):
            tmp = self.emmc / (name + ".tmp")
            tmp.write_bytes(image[key])
            tmp.replace(self.emmc / name)
        (self.emmc / "cmdline").write_text(image["cmdline"] + "\n")
        (self.emmc / "manifest.json").write_text(json.dumps(image["manifest"], indent=2) + "\n")
        if wipe_userdata or not (self.emmc / "userdata.img").exists():
            self._format_userdata()

    def _format_userdata(self) -> None:
        path = self.emmc / "userdata.img"
        path.unlink(missing_ok=True)
        with open(path, "wb") as f:
            f.truncate(USERDATA_SIZE)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-m", "0", "-L", "userdata", "-E", "root_owner=0:0", str(path)],
                       check=True, capture_output=True, timeout=60)

    def provision(self, image_path: Path, *, force: bool = False) -> None:
        """Factory flash: put an image in eMMC when there is none (or when forced)."""
        with self._lock:
            if force or self.image is None:
                image = firmware.read(image_path)
                self._write_disk(image_path)
                self._install(image, wipe_userdata=force)

    # -- power ----------------------------------------------------------------------------
    def set_power(self, on: bool) -> None:
        with self._lock:
            if on == self.power:
                return
            self.power = on
            if not on:
                self._stop_qemu()
                self._drop_ram()  # a power cut: RAM is gone
                self.mode, self.loader_ready = "off", False
                return
            self._drop_ram()  # a cold boot starts with fresh RAM, whatever a crash left
            if self.maskrom_button:
                # BootROM sees the button: no boot, the SoC enumerates as a maskrom device.
                self.mode, self.loader_ready = "maskrom", False
                return
            try:
                self._start_qemu()
            except BoardError:
                self.power = False
                raise

    def reset_device(self) -> None:
        """``rd``: leave loader mode and boot normally."""
        with self._lock:
            if self.mode not in ("maskrom", "loader"):
                raise BoardError(f"board {self.index}: no rockusb device to reset (mode {self.mode})")
            self.mode, self.loader_ready = "off", False
            self._start_qemu()

    def enter_maskrom(self) -> None:
        """``rd 3``: back to the BootROM's Maskrom, the loader in RAM gone."""
        with self._lock:
            if self.mode not in ("maskrom", "loader"):
                raise BoardError(f"board {self.index}: no rockusb device (mode {self.mode})")
            self.mode, self.loader_ready = "maskrom", False

    def download_boot(self) -> None:
        """``db``: the loader runs from RAM; storage commands work afterwards."""
        with self._lock:
            if self.mode not in ("maskrom", "loader"):
                raise BoardError(f"board {self.index}: no rockusb device (mode {self.mode})")
            self.loader_ready = True

    # -- QEMU -----------------------------------------------------------------------------
    @property
    def ram_mb(self) -> int:
        """What QEMU gives the guest: the kernel's ``memory_mb`` and the RAM above it (ramoops, U-Boot)."""
        return self.memory_mb + HIDDEN_RAM_MB

    @property
    def ramoops_address(self) -> int:
        return RAM_BASE + self.memory_mb * 1024 * 1024

    def _qemu_args(self, fail_stage: str | None = None) -> list[str]:
        """QEMU's command line; ``fail_stage`` a boot-fail stage this boot stops at (``BOOT_FAIL_STAGES``)."""
        cmdline = (self.emmc / "cmdline").read_text().strip() + f" twin.timescale={self.timescale:g}"
        cmdline += (f" mem={self.memory_mb}M ramoops.mem_address={self.ramoops_address:#x}"
                    f" ramoops.mem_size={RAMOOPS_SIZE:#x} ramoops.record_size={RAMOOPS_RECORD_SIZE:#x}")
        kernel = self.emmc / "Image"
        if fail_stage == "uboot":
            kernel = self._rejected_kernel()
        elif fail_stage:
            cmdline += f" twin.bootfail={fail_stage}"
            if fail_stage == "kernel":
                cmdline += " rdinit=/nonexistent"  # the last rdinit= counts: no init, no root: a real panic
        net = f"user,id=n0,hostfwd=tcp:{self.host}:{self.ssh_port}-:22"
        return [
            self.qemu, "-M", "virt,memory-backend=dram", "-cpu", "cortex-a72", "-smp", str(self.smp),
            "-m", str(self.ram_mb),
            "-object", f"memory-backend-file,id=dram,size={self.ram_mb}M,mem-path={self.ram},share=on",
            "-display", "none", "-monitor", "none", "-no-reboot", "-no-user-config", "-nodefaults",
            "-bios", str(self.uboot), "-kernel", str(kernel), "-initrd", str(self.emmc / "initrd.img"),
            "-append", cmdline,
            "-chardev", f"socket,id=ser0,path={self.run / 'serial.sock'},server=on,wait=on", "-serial", "chardev:ser0",
            "-drive", f"if=none,file={self.emmc / 'userdata.img'},format=raw,id=ud",
            "-device", "virtio-blk-device,drive=ud",
            "-netdev", net, "-device", "virtio-net-device,netdev=n0",
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=ctl,path={self.run / 'ctl.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name=twin.ctl",
            "-pidfile", str(self.run / "qemu.pid"),
        ] + (["-S"] if "boot-hang" in self.faults else [])

    def _rejected_kernel(self) -> Path:
        """A kernel file U-Boot loads and refuses (no arm64 Image magic; zeros, so nothing in it looks like a
        kernel): a boot that stops in U-Boot."""
        path = self.run / "rejected-Image"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size != 64 * 1024:
            path.write_bytes(bytes(64 * 1024))
        return path

    def _drop_ram(self) -> None:
        self.ram.unlink(missing_ok=True)

    def _draw_boot_fail(self) -> str | None:
        """This boot's draw of the boot-fail fault: the stage it stops at, or None."""
        if self._boot_fail is None:
            return None
        stage = self._boot_fail.draw()
        self.boot_fail_boots = self._boot_fail.boots
        if stage:
            self.boot_failures.append({"boot": self._boot_fail.boots, "stage": stage})
            log.info("board %d: boot-fail: boot %d stops at %s", self.index, self._boot_fail.boots, stage)
        return stage

    def _start_qemu(self) -> None:
        if self.image is None:
            raise BoardError(f"board {self.index}: eMMC is empty, flash an image first")
        self.run.mkdir(parents=True, exist_ok=True)
        for sock in ("serial.sock", "ctl.sock"):
            (self.run / sock).unlink(missing_ok=True)
        if self.ram.exists() and self.ram.stat().st_size != self.ram_mb * 1024 * 1024:
            self._drop_ram()  # another size of RAM (QEMU refuses it): start fresh
        args = self._qemu_args(self._draw_boot_fail())
        self._generation += 1
        gen = self._generation
        log_file = open(self.run / "qemu.log", "ab")
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_file,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log_file.close()
        self._serial = self._connect(self.run / "serial.sock")
        self._ctl = self._connect(self.run / "ctl.sock")
        self.mode = "booting"
        self.boots += 1
        threading.Thread(target=self._serial_loop, args=(gen, self._serial), daemon=True).start()
        threading.Thread(target=self._ctl_loop, args=(gen, self._ctl), daemon=True).start()
        threading.Thread(target=self._watch, args=(gen, self._proc), daemon=True).start()
        self._arm_reboot_timer()

    def _connect(self, path: Path, timeout: float = 15.0) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise BoardError(f"board {self.index}: QEMU exited at start (see {self.run / 'qemu.log'})")
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(path))
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise BoardError(f"board {self.index}: QEMU did not open {path.name} within {timeout:.0f} s") from None
                time.sleep(0.02)

    def _stop_qemu(self) -> None:
        self._generation += 1
        if self._reboot_timer:
            self._reboot_timer.cancel()
            self._reboot_timer = None
        proc, self._proc = self._proc, None
        for sock in (self._serial, self._ctl):
            if sock:
                try:
                    sock.close()
                except OSError:
                    pass
        self._serial = self._ctl = None
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.error("board %d: QEMU pid %d did not die", self.index, proc.pid)

    def _serial_loop(self, gen: int, sock: socket.socket) -> None:
        try:
            while data := sock.recv(4096):
                if gen != self._generation:
                    return
                self.console.write(data)
        except OSError:
            pass

    def _ctl_loop(self, gen: int, sock: socket.socket) -> None:
        """Messages from the guest agent: 'hello' when it starts, 'reboot loader' before a reset."""
        buf = b""
        try:
            while data := sock.recv(1024):
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._on_guest_message(gen, line.decode(errors="replace").strip())
        except OSError:
            pass

    def _on_guest_message(self, gen: int, msg: str) -> None:
        log.info("board %d: guest says %r", self.index, msg)
        with self._lock:
            if gen != self._generation:
                return
            if msg == "hello":
                self.mode = "running"
                for name in sorted(self._pending_clears):
                    self._send_ctl(f"clear {name}")
                self._pending_clears.clear()
                for name, value in self.faults.items():
                    if name in GUEST_FAULTS and name != "kernel-panic":
                        self._send_ctl(f"fault {name} {value}")
            elif msg == "reboot loader":
                self._loader_requested = gen
                self._send_ctl("ack loader")

    def _watch(self, gen: int, proc: subprocess.Popen) -> None:
        rc = proc.wait()
        log.info("board %d: QEMU exited with %s", self.index, rc)
        with self._lock:
            if gen != self._generation:
                return  # we stopped it ourselves
            if self._loader_requested == gen:
                self._stop_qemu()
                self.mode, self.loader_ready = "loader", True
                return
            # The guest reset itself (reboot, watchdog): the SoC starts again from the BootROM.
            self._stop_qemu()
            self._start_qemu()

    def _arm_reboot_timer(self) -> None:
        if "spontaneous-reboot" not in self.faults:
            return
        delay = float(self.faults["spontaneous-reboot"] or 10)
        gen = self._generation

        def fire():
            with self._lock:
                if gen == self._generation and self.power:
                    self._stop_qemu()
                    self._start_qemu()

        self._reboot_timer = threading.Timer(delay, fire)
        self._reboot_timer.daemon = True
        self._reboot_timer.start()

    def write_serial(self, data: bytes) -> None:
        sock = self._serial
        if sock is not None:
            try:
                sock.sendall(data)
            except OSError:
                pass

    def _send_ctl(self, line: str) -> bool:
        """Send a line to the guest agent; False when there is no channel or it failed."""
        if self._ctl is not None:
            try:
                self._ctl.sendall(line.encode() + b"\n")
                return True
            except OSError:
                pass
        return False

    # -- faults ---------------------------------------------------------------------------
    def set_fault(self, name: str, value: str | None = "1") -> None:
        """Switch fault ``name`` on. ``value`` is checked first (``check_fault_value``): one of
        the wrong kind raises ``FaultArgumentError`` and changes nothing."""
        value = check_fault_value(name, value)
        with self._lock:
            self.faults[name] = value
            self._pending_clears.discard(name)
            if name == "boot-fail":  # a fresh draw: the same value gives the same failed boots from here
                self._boot_fail = BootFail.parse(value)
                self.boot_failures, self.boot_fail_boots = [], 0
            elif name == "serial-garbage":  # value: percent of output chunks that get line noise
                self.console.garbage_rate = min(100.0, max(1.0, float(value if value != "1" else 30))) / 100
            elif name == "spontaneous-reboot" and self.mode in ("booting", "running"):
                self._arm_reboot_timer()
            elif name in GUEST_FAULTS:
                self._send_ctl(f"fault {name} {value}")
            if name == "kernel-panic":
                del self.faults[name]  # a panic happens once; the next power cycle recovers

    def clear_fault(self, name: str | None = None) -> None:
        """Clear fault ``name``, or every fault. A guest fault cleared while the guest cannot
        hear it (the board off or still booting) is cleared again at its next ``hello``: a
        clear is never lost, and what a fault left on the eMMC (userdata-full's fill file)
        goes at the next power-on."""
        if name is not None and name not in FAULTS:
            raise BoardError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        with self._lock:
            names = [name] if name else list(self.faults)
            if not name:
                names += sorted({"userdata-full"} - set(names))  # it outlives a power cycle: always clear it
            running = self.mode == "running"
            for n in names:
                self.faults.pop(n, None)
                if n == "serial-garbage":
                    self.console.garbage_rate = 0.0
                if n == "spontaneous-reboot" and self._reboot_timer:
                    self._reboot_timer.cancel()
                if n == "boot-fail":
                    self._boot_fail = None
                if n in GUEST_FAULTS and not (self._send_ctl(f"clear {n}") and running):
                    self._pending_clears.add(n)

    # -- status ---------------------------------------------------------------------------
    def usb(self) -> dict:
        present = self.mode in ("maskrom", "loader")
        return {"present": present, "mode": {"maskrom": "Maskrom", "loader": "Loader"}.get(self.mode),
                "loader_ready": self.loader_ready, **RKUSB_ID}

    def status(self) -> dict:
        image = self.image
        return {
            "index": self.index,
            "power": self.power,
            "mode": self.mode,
            "maskrom_button": self.maskrom_button,
            "image": image["name"] if image else None,
            "console": {"host": self.host, "port": self.console_port, "clients": self.console.client_count},
            "ssh": {"host": self.host, "port": self.ssh_port},
            "faults": dict(self.faults),
            "boots": self.boots,
            "boot_failures": [dict(f) for f in self.boot_failures],
            "boot_fail_boots": self.boot_fail_boots,
            "rockusb_sectors_written": self.rockusb_sectors_written,
            "qemu_pid": self._proc.pid if self._proc and self._proc.poll() is None else None,
        }

    def close(self) -> None:
        with self._lock:
            self.power = False
            self._stop_qemu()
            self._drop_ram()
            self.mode = "off"
        self.console.close()
