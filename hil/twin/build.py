"""``hil twin build``: the virtual board's firmware images, from Debian's arm64 packages.

Inputs are the resolved package versions (with their SHA256 from the apt index), the
guest files in ``hil/twin/guest``, the image manifests in ``images/`` and this builder's
own code. Their digest is stored next to the outputs; an unchanged digest means there
is nothing to do. Outputs are deterministic: equal inputs give byte-equal images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path

from hil.kit import images as image_manifests
from hil.paths import IMAGES_DIR, twin_dir
from hil.twin import deploykit, firmware, guestfiles, hostkey, surface
from hil.twin.aptfetch import PrivateApt, extract
from hil.twin.cpio import CpioWriter

log = logging.getLogger("hil.twin.build")

GUEST_PACKAGES = [
    "busybox-static",
    "dropbear-bin",
    "openssh-sftp-server",
    "libc6",
    "libcrypt1",
    "libtomcrypt1",
    "libtommath1",
    "libgmp10",
    "zlib1g",
    "libgcc-s1",
    "u-boot-qemu",
    # the platform stress (tests/test_stress.py) runs the image's memtester, as on a board (Debian builds
    # no arm64 stressapptest: the twin's is a stand-in, guest/rootfs/usr/bin/stressapptest)
    "memtester",
    # the power-cut check (hil/lab/powercut.py) runs e2fsck -fn on the user partition, as on a Debian board
    "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libss2",
]
# Load order matters: busybox insmod does not resolve dependencies. The guest's rcS gives each module
# the NAME.PARAM=VALUE words of the kernel command line, as modprobe does (ramoops's layout comes from
# the board: hil.twin.board).
GUEST_MODULES = [
    "kernel/drivers/virtio/virtio_mmio.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/char/virtio_console.ko",
    "kernel/lib/crc16.ko",
    "kernel/crypto/crc32c_generic.ko",
    "kernel/fs/mbcache.ko",
    "kernel/fs/jbd2/jbd2.ko",
    "kernel/fs/ext4/ext4.ko",
    "kernel/lib/reed_solomon/reed_solomon.ko",  # ramoops needs it (its ECC), loaded or not
    "kernel/fs/pstore/ramoops.ko",  # pstore itself and its deflate compression are built in
]
CMDLINE = "console=ttyAMA0,115200 rdinit=/init panic=0 loglevel=7"
UBOOT_BOOTDELAY = (b"bootdelay=2\0", b"bootdelay=1\0")
# Where U-Boot may copy the initrd and device tree before booting: below 0xc0000000, the top of the 2 GiB
# the kernel is told it has (mem=2048M; the board gives QEMU 256 MiB more, for ramoops and U-Boot's own
# relocation). Debian's default, 0xffffffff, would put them above it, where the kernel adds the initrd's
# pages back to its memory (MemTotal would change) and the device tree would leave it. Same lengths, so
# the default environment keeps its size.
UBOOT_PLACEMENT = [(b"fdt_high=0xffffffff\0", b"fdt_high=0xc0000000\0"),
                   (b"initrd_high=0xffffffff\0", b"initrd_high=0xc0000000\0")]
ROOT_PASSWORD = "hil-twin-3vQ8"  # the twin's published default; real boards get theirs from the env


class BuildError(RuntimeError):
    """The twin images could not be built."""


def _source_digest() -> str:
    """Digest of everything in the repo that shapes the images."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    files = sorted(p for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files += sorted(p for p in IMAGES_DIR.rglob("*") if p.is_file()) + [Path(image_manifests.__file__)]
    for path in files:
        h.update(str(path.relative_to(here.parent.parent)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _resolve(apt: PrivateApt) -> list[dict]:
    kernel = [d for d in apt.depends("linux-image-arm64") if d.startswith("linux-image-")]
    if not kernel:
        raise BuildError("cannot find the current arm64 kernel package (linux-image-arm64 has no linux-image-* dependency)")
    return apt.candidates([kernel[0], *GUEST_PACKAGES])


def _busybox_applets(busybox: bytes) -> list[str]:
    """Applet names from busybox's own name table (the binary is arm64, so it cannot be asked)."""
    start = busybox.find(b"[\0[[\0")
    if start < 0:
        raise BuildError("busybox binary has no applet table")
    names, pos = [], start
    while True:
        end = busybox.index(b"\0", pos)
        if end == pos:
            return names
        names.append(busybox[pos:end].decode())
        pos = end + 1


def _hide_applet(busybox: bytes, name: str) -> bytes:
    """Rename an applet in busybox's table so ash runs the script of that name from PATH.

    Debian's busybox runs its own applets before searching PATH (FEATURE_SH_STANDALONE),
    which would bypass /sbin/reboot and lose the "loader" argument. The last letter is
    upper-cased, which keeps the table sorted for busybox's binary search.
    """
    old = b"\0" + name.encode() + b"\0"
    new = b"\0" + name[:-1].encode() + name[-1].upper().encode() + b"\0"
    start = busybox.find(b"[\0[[\0")
    at = busybox.find(old, start)
    if start < 0 or at < 0:
        raise BuildError(f"busybox has no applet {name!r} to hide")
    return busybox[:at] + new + busybox[at + len(old):]


def _patch_uboot(binary: bytes) -> bytes:
    old, new = UBOOT_BOOTDELAY
    if binary.count(old) != 1:
        raise BuildError(f"u-boot.bin: expected one {old!r} in the default environment")
    return binary.replace(old, new)


def _cap_uboot_placement(binary: bytes) -> bytes:
    """U-Boot's default environment with ``UBOOT_PLACEMENT`` applied."""
    for old, new in UBOOT_PLACEMENT:
        if binary.count(old) != 1:
            raise BuildError(f"u-boot.bin: expected one {old!r} in the default environment")
        binary = binary.replace(old, new)
    return binary


def _password_hash(password: str) -> str:
    out = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "rk3576hiltwin", password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _base_rootfs(root: Path, kver: str, key: bytes) -> CpioWriter:
    cpio = CpioWriter()
    busybox = _hide_applet((root / "bin/busybox").read_bytes(), "reboot")
    cpio.add_file("bin/busybox", busybox, 0o755)
    for applet in _busybox_applets(busybox):
        if applet not in ("busybox", "rebooT"):
            cpio.add_symlink(f"bin/{applet}", "busybox")
    cpio.add_symlink("init", "bin/busybox")
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "userdata", "var/log", "etc/dropbear", "root/.ssh"):
        cpio.add_dir(d, 0o1777 if d == "tmp" else (0o700 if d.startswith("root") else 0o755))
    cpio.add_chardev("dev/console", 5, 1)
    cpio.add_chardev("dev/null", 1, 3, 0o666)
    for sub in ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"):
        cpio.add_tree(root / sub, sub, exclude=("gconv",))
    cpio.add_symlink("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu/ld-linux-aarch64.so.1")
    for rel in ("usr/sbin/dropbear", "usr/bin/dbclient", "usr/lib/openssh/sftp-server", "usr/sbin/memtester",
                "sbin/e2fsck"):
        cpio.add_file(rel, (root / rel).read_bytes(), 0o755)
    cpio.add_symlink("usr/lib/sftp-server", "openssh/sftp-server")
    mods = []
    for rel in GUEST_MODULES + surface.KERNEL_MODULES:
        src = root / "lib/modules" / kver / rel
        if not src.exists():
            raise BuildError(f"kernel {kver} has no module {rel}")
        cpio.add_file(f"lib/modules/{kver}/{rel}", src.read_bytes())
        mods.append(rel)
    cpio.add_file("etc/twin/modules", ("\n".join(mods) + "\n").encode())
    cpio.add_tree(Path(__file__).parent / "guest" / "rootfs")
    cpio.add_file("etc/dropbear/dropbear_ed25519_host_key", key, 0o600)
    return cpio


def build(force: bool = False, out: Path | None = None) -> dict:
    """Build every image in ``images/`` into the twin cache; returns the build record."""
    out = Path(out) if out else twin_dir()
    out.mkdir(parents=True, exist_ok=True)
    apt = PrivateApt(out.parent / "apt")
    t0 = time.monotonic()
    apt.update()
    packages = _resolve(apt)
    names = image_manifests.available()
    manifests = [image_manifests.load(n) for n in names]
    digest = hashlib.sha256(
        json.dumps({"packages": packages, "source": _source_digest()}, sort_keys=True).encode()
    ).hexdigest()
    record_path = out / "build.json"
    if not force and record_path.exists():
        record = json.loads(record_path.read_text())
        if (record.get("digest") == digest and all((out / "images" / f"{n}.img").exists() for n in names)
                and deploykit.built(out)):
            record["up_to_date"] = True
            return record

    debs = apt.download(packages, out.parent / "apt" / "debs")
    root = out / "root"
    shutil.rmtree(root, ignore_errors=True)
    for deb in debs:
        extract(deb, root)
    kernel_pkg = packages[0]["package"]
    kver = kernel_pkg.removeprefix("linux-image-")
    kernel = (root / "boot" / f"vmlinuz-{kver}").read_bytes()
    surface.ensure_host_packages()
    surface.prepare(apt, kver, out, packages[0]["version"])
    uboot = _cap_uboot_placement(_patch_uboot((root / "usr/lib/u-boot/qemu_arm64/u-boot.bin").read_bytes()))
    (out / "u-boot.bin").write_bytes(uboot)

    key = hostkey.derive()
    (out / "ssh_host_ed25519_key.pub").write_text(key.public_line() + "\n")
    base = _base_rootfs(root, kver, key.dropbear_private()).to_gzip()
    shadow = f"root:{_password_hash(ROOT_PASSWORD)}:19000:0:99999:7:::\n"

    (out / "images").mkdir(exist_ok=True)
    built = {}
    for manifest in manifests:
        resolved = manifest.as_dict()
        resolved["kernel"] = {**manifest.kernel, "release": kver, "package": packages[0]["version"]}
        overlay = CpioWriter()
        overlay.add_file("etc/shadow", shadow.encode(), 0o600)
        guestfiles.add_image_files(overlay, resolved)
        initrd = base + overlay.to_gzip()
        firmware.write(out / "images" / f"{manifest.name}.img", resolved, kernel, initrd, CMDLINE)
        built[manifest.name] = hashlib.sha256((out / "images" / f"{manifest.name}.img").read_bytes()).hexdigest()
    shutil.rmtree(root, ignore_errors=True)
    deploykit.write(out)

    record = {
        "digest": digest,
        "kernel_release": kver,
        "packages": [{k: p[k] for k in ("package", "version", "sha256")} for p in packages],
        "images": built,
        "host_key": key.public_line(),
        "seconds": round(time.monotonic() - t0, 1),
        "up_to_date": False,
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record
