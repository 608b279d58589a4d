"""The Rockchip SoC surface inside the guest (rknpu, devfreq, cpufreq, thermal, device tree).

QEMU's ``virt`` board has none of the RK3576's devices, so the twin adds them in two ways:

- A small kernel module, ``rknpu.ko`` (source in ``kmod/``), cross-compiled here against
  the guest kernel's own Debian headers. It registers the NPU, GPU and DDR devfreq devices
  with the RK3576 OPP tables, the vendor governors, the rknpu debugfs/procfs files, the
  six tsadc thermal zones, and the cpufreq policies and cpuidle states of both clusters.
  The kernel's frameworks then give the files their real formats and write semantics
  (devfreq clamps ``set_freq`` to the highest OPP, a bad governor name is ``EINVAL``).
- Static per-image files: ``/proc/cpuinfo`` of the 4 + 4 cores and the device tree's
  identity, bind-mounted at boot by ``/usr/libexec/twin/rockchip-surface``.

Building the module needs a cross compiler and Debian's kbuild tools on the host
(:data:`HOST_PACKAGES`, installed by :func:`ensure_host_packages`). The result is cached by
the digest of its inputs and is byte-for-byte reproducible.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from hil.twin.aptfetch import PrivateApt, extract
from hil.twin.cpio import CpioWriter

log = logging.getLogger("hil.twin.surface")

# Extra kernel modules (paths below /lib/modules/<kver>/) loaded after the base set, in order.
# The Debian kernel builds these two devfreq governors as modules; the vendor kernel has them built in.
KERNEL_MODULES: list[str] = [
    "kernel/drivers/devfreq/governor_simpleondemand.ko",
    "kernel/drivers/devfreq/governor_userspace.ko",
]
# Host packages that building the surface module needs (Debian bookworm names).
KBUILD_SERIES = "6.1"
HOST_PACKAGES = ["make", "gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu", f"linux-kbuild-{KBUILD_SERIES}"]
CROSS_COMPILE = "aarch64-linux-gnu-"

KMOD_SOURCE = Path(__file__).resolve().parent / "kmod"
KMOD_NAME = "rknpu.ko"
KMOD_GUEST_PATH = f"extra/{KMOD_NAME}"  # below /lib/modules/<kver>/
SHARE = "usr/share/twin/surface"  # guest files that rockchip-surface mounts

BOARD_COMPATIBLE = {"myd-lr3576": ("myir,myd-lr3576", "MYIR MYD-LR3576 Board")}

# /proc/cpuinfo of an RK3576: cpu0-3 Cortex-A53 r0p4, cpu4-7 Cortex-A72 r0p2 [parts from the TRMs]
CPU_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
CPU_CLUSTERS = [("0xd03", "0x0", 4, range(0, 4)), ("0xd08", "0x0", 2, range(4, 8))]


class SurfaceError(RuntimeError):
    """The surface module could not be built; the message says what is missing."""


# ---------------------------------------------------------------- static files


def cpuinfo() -> bytes:
    """``/proc/cpuinfo`` as the arm64 kernel prints it for the RK3576's two clusters."""
    blocks = []
    for part, variant, revision, cpus in CPU_CLUSTERS:
        for n in cpus:
            blocks.append(
                f"processor\t: {n}\n"
                "BogoMIPS\t: 48.00\n"
                f"Features\t: {CPU_FEATURES}\n"
                "CPU implementer\t: 0x41\n"
                "CPU architecture: 8\n"
                f"CPU variant\t: {variant}\n"
                f"CPU part\t: {part}\n"
                f"CPU revision\t: {revision}\n"
            )
    return ("\n".join(blocks) + "\n").encode()


def _strings(*values: str) -> bytes:
    """A DT string-list property: each value NUL-terminated."""
    return b"".join(v.encode() + b"\0" for v in values)


def _cells(*values: int) -> bytes:
    return b"".join(struct.pack(">I", v) for v in values)


def board_identity(board: str) -> tuple[str, str]:
    """(board compatible, model) for a board name from an image manifest."""
    if board in BOARD_COMPATIBLE:
        return BOARD_COMPATIBLE[board]
    return f"rockchip,{board}", f"Rockchip {board.upper()} Board"


def device_tree(board: str, serial: str) -> dict[str, bytes]:
    """The board's device tree as /proc/device-tree shows it: relative path -> property bytes.

    Only the nodes the suite and vendor tools look at: the root identity, the CPUs, the
    NPU, GPU and thermal zones (names and compatibles from the vendor rk3576.dtsi).
    """
    compatible, model = board_identity(board)
    tree: dict[str, bytes] = {
        "compatible": _strings(compatible, "rockchip,rk3576"),
        "model": _strings(model),
        "name": b"\0",
        "#address-cells": _cells(2),
        "#size-cells": _cells(2),
        "serial-number": _strings(serial),
        "interrupt-parent": _cells(1),
    }
    cpus = [(f"cpu@{n}", "arm,cortex-a53", n) for n in range(4)] + [
        (f"cpu@{0x100 + n:x}", "arm,cortex-a72", 0x100 + n) for n in range(4)
    ]
    tree["cpus/name"] = _strings("cpus")
    tree["cpus/#address-cells"] = _cells(1)
    tree["cpus/#size-cells"] = _cells(0)
    for node, compat, reg in cpus:
        big = "a72" in compat
        tree[f"cpus/{node}/name"] = _strings("cpu")
        tree[f"cpus/{node}/device_type"] = _strings("cpu")
        tree[f"cpus/{node}/compatible"] = _strings(compat)
        tree[f"cpus/{node}/reg"] = _cells(reg)
        tree[f"cpus/{node}/enable-method"] = _strings("psci")
        tree[f"cpus/{node}/capacity-dmips-mhz"] = _cells(1024 if big else 485)
    tree["npu@27700000/name"] = _strings("npu")
    tree["npu@27700000/compatible"] = _strings("rockchip,rk3576-rknpu")
    tree["npu@27700000/reg"] = _cells(0, 0x27700000, 0, 0x8000, 0, 0x27708000, 0, 0x8000)
    tree["npu@27700000/interrupt-names"] = _strings("npu0_irq", "npu1_irq")
    tree["npu@27700000/clock-names"] = _strings("clk_npu", "aclk0", "aclk1", "hclk_root", "aclk_cbuf", "hclk_cbuf")
    tree["npu@27700000/power-domain-names"] = _strings("npu0", "npu1")
    tree["npu@27700000/status"] = _strings("okay")
    tree["iommu@27702000/name"] = _strings("iommu")
    tree["iommu@27702000/compatible"] = _strings("rockchip,iommu-v2")
    tree["iommu@27702000/status"] = _strings("okay")
    tree["gpu@27800000/name"] = _strings("gpu")
    tree["gpu@27800000/compatible"] = _strings("arm,mali-bifrost")
    tree["gpu@27800000/reg"] = _cells(0, 0x27800000, 0, 0x20000)
    tree["gpu@27800000/status"] = _strings("okay")
    tree["dmc/name"] = _strings("dmc")
    tree["dmc/compatible"] = _strings("rockchip,rk3576-dmc")
    tree["dmc/status"] = _strings("okay")
    tree["thermal-zones/name"] = _strings("thermal-zones")
    for zone in ("soc-thermal", "bigcore-thermal", "little-core-thermal", "ddr-thermal", "npu-thermal", "gpu-thermal"):
        tree[f"thermal-zones/{zone}/name"] = _strings(zone)
        tree[f"thermal-zones/{zone}/polling-delay"] = _cells(1000)
        tree[f"thermal-zones/{zone}/polling-delay-passive"] = _cells(20)
    return tree


def serial_number(manifest: dict) -> str:
    """A stable per-image serial number (real boards carry the OTP one)."""
    return hashlib.sha256(manifest["build"]["id"].encode()).hexdigest()[:16]


# ---------------------------------------------------------------- host tools


def _installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def missing_host_packages() -> list[str]:
    return [p for p in HOST_PACKAGES if not _installed(p)]


def ensure_host_packages() -> list[str]:
    """Install what building the module needs (apt-get, through sudo unless root); returns what it installed."""
    missing = missing_host_packages()
    if not missing:
        return []
    sudo = [] if os.geteuid() == 0 else ["sudo", "-E"]
    cmd = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:  # stale lists: update once and retry
        subprocess.run([*sudo, "apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SurfaceError(f"could not install {' '.join(missing)}: {proc.stderr.strip()[-2000:]}")
    return missing


# ---------------------------------------------------------------- module build


def _tool_version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.splitlines()[0] if out.stdout else ""


def _header_packages(apt: PrivateApt, kver: str) -> list[dict]:
    name = f"linux-headers-{kver}"
    common = [d for d in apt.depends(name) if d.startswith("linux-headers-") and d.endswith("-common")]
    if not common:
        raise SurfaceError(f"{name} has no linux-headers-*-common dependency")
    return apt.candidates([name, common[0]])


def module_digest(headers: list[dict], gcc: str) -> str:
    """Digest of everything the module's bytes depend on."""
    h = hashlib.sha256()
    for pkg in headers:
        h.update(f"{pkg['package']}={pkg['version']}:{pkg['sha256']}\n".encode())
    h.update(gcc.encode() + b"\n" + CROSS_COMPILE.encode() + b"\n")
    for path in sorted(KMOD_SOURCE.iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _prepare_headers(tree: Path, kver: str) -> Path:
    """Make an extracted arm64 header package usable for M= builds outside /usr/src."""
    arch_dir = tree / "usr/src" / f"linux-headers-{kver}"
    makefile = arch_dir / "Makefile"
    text = makefile.read_text()
    makefile.write_text(text.replace("include /usr/src/", f"include {tree}/usr/src/"))
    # scripts/ and tools/ link to ../../lib/linux-kbuild-X.Y: point that at the host's kbuild
    target = os.readlink(arch_dir / "scripts")
    kbuild = Path(target).parent.name  # linux-kbuild-6.1
    host = Path("/usr/lib") / kbuild
    if not (host / "scripts").is_dir():
        raise SurfaceError(f"host kbuild tools {host} are missing: install {kbuild} (surface.ensure_host_packages())")
    (tree / "usr/lib").mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib" / kbuild).symlink_to(host)
    return arch_dir


def compile_module(headers_tree: Path, kver: str, work: Path) -> bytes:
    """Cross-compile kmod/ against extracted headers; returns the stripped .ko."""
    arch_dir = _prepare_headers(headers_tree, kver)
    src = work / "src"
    shutil.copytree(KMOD_SOURCE, src)
    cmd = [
        "make", "-s", "-C", str(arch_dir), f"M={src}", "ARCH=arm64", f"CROSS_COMPILE={CROSS_COMPILE}",
        # the build paths must not reach the object: WARN() and friends embed __FILE__
        f"KCFLAGS=-ffile-prefix-map={work}=/usr/src/rk3576-twin",
        "modules",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KBUILD_", "ARCH", "CROSS_COMPILE"))}
    env.update({"LC_ALL": "C", "SOURCE_DATE_EPOCH": "0"})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SurfaceError(f"building {KMOD_NAME} failed:\n{(proc.stdout + proc.stderr).strip()[-4000:]}")
    out = work / KMOD_NAME
    subprocess.run(
        [f"{CROSS_COMPILE}strip", "--strip-debug", "-o", str(out), str(src / KMOD_NAME)], check=True
    )
    return out.read_bytes()


def build_module(apt: PrivateApt, kver: str, cache: Path, debs: Path | None = None,
                 kernel_version: str | None = None) -> bytes:
    """The surface module for kernel ``kver``, built once per input digest and cached.

    ``kernel_version`` is the kernel package's version; the headers must be the same build.
    """
    headers = _header_packages(apt, kver)
    if kernel_version and headers[0]["version"] != kernel_version:
        raise SurfaceError(
            f"linux-headers-{kver} is {headers[0]['version']} but the kernel is {kernel_version}: update the apt lists"
        )
    gcc = _tool_version(f"{CROSS_COMPILE}gcc")
    if not gcc:
        raise SurfaceError(f"no {CROSS_COMPILE}gcc on the host: install {' '.join(HOST_PACKAGES)}")
    digest = module_digest(headers, gcc)
    cached = cache / digest / KMOD_NAME
    if cached.is_file():
        return cached.read_bytes()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as tmp:
        work = Path(tmp)
        for deb in apt.download(headers, debs or apt.root / "debs"):
            extract(deb, work / "headers")
        ko = compile_module(work / "headers", kver, work)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_bytes(ko)
    partial.replace(cached)
    log.info("built %s for %s (%d bytes, %s)", KMOD_NAME, kver, len(ko), digest[:12])
    return ko


_modules: dict[str, bytes] = {}


def prepare(apt: PrivateApt, kver: str, out: Path, kernel_version: str | None = None) -> bytes:
    """Build (or fetch from the cache) the module for ``kver``; call once per image build.

    ``out`` is the twin cache directory of the build; the module cache lives in ``out/kmod``.
    """
    if kver not in _modules:
        _modules[kver] = build_module(apt, kver, Path(out) / "kmod", kernel_version=kernel_version)
    return _modules[kver]


def _module_for(kver: str) -> bytes:
    if kver not in _modules:
        raise SurfaceError(f"the rknpu module for {kver} was not built: call surface.prepare() first")
    return _modules[kver]


# ---------------------------------------------------------------- image files


def add_files(cpio: CpioWriter, manifest: dict) -> None:
    """Add the surface's guest files for one image."""
    kver = manifest["kernel"]["release"]
    module = _module_for(kver)
    cpio.add_file(f"lib/modules/{kver}/{KMOD_GUEST_PATH}", module)
    cpio.add_file(f"{SHARE}/cpuinfo", cpuinfo())
    board = manifest.get("build", {}).get("board", "myd-lr3576")
    for rel, data in device_tree(board, serial_number(manifest)).items():
        cpio.add_file(f"{SHARE}/devicetree/{rel}", data, 0o444)
