"""Version strings of the Rockchip NPU stack, the rules that pair them, and the RK3576 facts
those rules and the checks are written against.

Versions are compared on their numeric release (``0.9.8`` -> ``(0, 9, 8)``); a suffix such
as ``b1`` in ``1.2.1b1`` marks a pre-release, which sorts below its release. Sources are
rockchip.md §1.2, §2, §3.4, §4, §5 ("Versions tested by Rockchip"), §9.12 and §10.
"""

from __future__ import annotations

import re
from pathlib import Path

import attr

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?[-+._]?([A-Za-z][\w.]*)?$")
_PRE = re.compile(r"^(a|b|rc)(\d*)$")

# The driver tarball shipped in rknn-llm: rknpu_driver_0.9.8_20241009 from 1.1.0 on (the
# maintainer's answer to matmul failures is "upgrade to 0.9.8", rknn-llm #413);
# rknpu_driver_0.9.6_20240322 with 1.0.x.
_SHIPPED_DRIVER = ((1, 1, 0), "0.9.8"), ((0, 0, 0), "0.9.6")
# The RKNPU driver each librknnrt release came with, from Rockchip's RKNN SDK release notes
# (the BSP's docs/cn/Common/NPU/README.md, "版本号查询": librknnrt 1.5.2 with rknpu 0.9.2, 1.6.0
# with 0.9.3, 2.0.0b0 -- the first with RK3576 -- with 0.9.6). A runtime is held to the driver
# of its release line; users report 2.3.2 failing on 0.9.2 (LuckfoxTECH/luckfox-pico#328).
_RKNN_DRIVER = ((2, 0, 0), "0.9.6"), ((1, 6, 0), "0.9.3"), ((1, 5, 2), "0.9.2")
RKNN_DRIVER_SOURCE = "Rockchip's RKNN SDK release notes pair librknnrt 2.0.0 with rknpu 0.9.6"
# Kernel series with Rockchip's BSP and its vendor RKNPU driver (RK3576 itself: 6.1).
BSP_KERNEL_SERIES = ((5, 10), (6, 1))
# From 6.18 mainline drives the NPU with the `rocket` DRM accel driver (merged late 2025),
# which librkllmrt does not use (airockchip/rknn-toolkit2#570, rkllama#97).
ROCKET_FROM = (6, 18)


def parse_version(text: str) -> tuple[int, int, int]:
    """``"0.9.8"`` -> ``(0, 9, 8)``; also ``v0.9.8``, ``1.2``, ``1.2.1b1`` (suffix dropped).

    Raises ValueError for anything else (e.g. a toolkit version ``unknown``)."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise ValueError(f"not a version: {text!r}")
    return int(m[1]), int(m[2] or 0), int(m[3] or 0)


def version_key(text: str) -> tuple:
    """Sort key: the release, then pre-releases (``a``/``b``/``rc``) before the release itself.
    An unrecognised suffix (a local build tag) sorts after the release."""
    release = parse_version(text)
    suffix = _VERSION.match(text.strip())[4] or ""
    if not suffix:
        return release + (1, "", 0)
    pre = _PRE.match(suffix)
    if pre:
        return release + (0, pre[1], int(pre[2] or 0))
    return release + (2, suffix, 0)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def at_least(version: str, minimum: str) -> bool:
    return compare(version, minimum) >= 0


def required_driver(rkllm_runtime: str) -> str:
    """The RKNPU driver a qualified board runs under an RKLLM runtime: the one Rockchip ships
    with that runtime, 0.9.8 for 1.1.0 and later (so 1.2.1 wants 0.9.8), 0.9.6 for 1.0.x.
    The runtime itself (1.1-1.3) only warns below 0.9.7 ("Your rknpu driver version is too
    low, please upgrade to 0.9.7"); 0.9.7 still fails generation in reported cases, so
    qualification asks for the shipped driver."""
    release = parse_version(rkllm_runtime)
    return next(driver for since, driver in _SHIPPED_DRIVER if release >= since)


def required_rknn_driver(rknn_runtime: str) -> str | None:
    """The oldest RKNPU driver librknnrt ``rknn_runtime`` is released for, or None for a runtime
    older than the notes cover. A pre-release (``2.0.0b0``) counts as its release."""
    release = parse_version(rknn_runtime)
    return next((driver for since, driver in _RKNN_DRIVER if release >= since), None)


def kernel_series(kernel_release: str) -> tuple[int, int]:
    """``"6.1.115-vendor-rk35xx"`` -> ``(6, 1)``."""
    m = re.match(r"^(\d+)\.(\d+)", kernel_release.strip())
    if m is None:
        raise ValueError(f"not a kernel release: {kernel_release!r}")
    return int(m[1]), int(m[2])


def driver_supports_kernel(driver_version: str | None, kernel_release: str) -> tuple[bool, str]:
    """Whether the RKNPU vendor driver that RKLLM needs runs on this kernel, and why (not).

    ``driver_version`` is what the board reports (None: no RKNPU driver found). The vendor
    driver lives in Rockchip's BSP kernels (5.10 and 6.1 series); mainline kernels from 6.18
    bind the NPU to ``rocket`` instead, which RKLLM does not support. A vendor driver ported
    to another kernel is not a combination Rockchip ships, so it does not qualify."""
    series = kernel_series(kernel_release)
    name = f"{series[0]}.{series[1]}"
    if series >= ROCKET_FROM:
        why = (f"kernel {kernel_release} is mainline {name}, where the NPU is driven by the rocket DRM accel "
               f"driver; RKLLM needs Rockchip's RKNPU vendor driver (BSP kernel 5.10 or 6.1)")
        if driver_version:
            why += f"; the RKNPU {driver_version} found is a port Rockchip does not ship for {name}"
        return False, why
    if series not in BSP_KERNEL_SERIES:
        return False, (f"kernel {kernel_release} ({name}) is not a Rockchip BSP series (5.10, 6.1): "
                       f"the RKNPU vendor driver is not supported there")
    if not driver_version:
        return False, (f"no RKNPU driver found on BSP kernel {kernel_release}: the kernel must be built with "
                       f"CONFIG_ROCKCHIP_RKNPU (the rknpu module loaded)")
    try:
        parse_version(driver_version)
    except ValueError:
        return False, f"RKNPU driver version {driver_version!r} is not a version"
    return True, f"RKNPU {driver_version} on BSP kernel {name} ({kernel_release})"


@attr.s(frozen=True)
class LibraryVersion:
    """A runtime library's version and, for librknnrt, its build (``commit@date``)."""

    version = attr.ib()
    build = attr.ib(default=None)


_LIBRKNNRT = re.compile(r"librknnrt version: (\d[\w.]*)(?: \(([^)]*)\))?")
_LIBRKLLMRT = re.compile(r"rkllm-runtime version: (\d[\w.]*)")


def librknnrt_version(text: str) -> LibraryVersion | None:
    """From ``strings librknnrt.so`` (or an ``I RKNN: ... librknnrt version: ...`` line):
    ``librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)``."""
    m = _LIBRKNNRT.search(text)
    return LibraryVersion(m[1].rstrip("."), m[2]) if m else None


def librkllmrt_version(text: str) -> LibraryVersion | None:
    """From ``strings librkllmrt.so`` or the runtime's init line: ``rkllm-runtime version: 1.2.1``."""
    m = _LIBRKLLMRT.search(text)
    return LibraryVersion(m[1].rstrip(".")) if m else None


_CHUNK = 1 << 20
_KEEP = 4096  # carried into the next chunk: longer than any version string
_MARGIN = 512  # a match ending this close to a chunk's end may be cut: find it again next chunk


def library_version(path) -> LibraryVersion | None:
    """The version string in a runtime shared object, read in 1 MiB chunks (the libraries are
    tens of MB), as ``strings lib | grep`` finds it; None when there is none (librkllmrt.so may
    carry none: rockchip.md §5, "Reading userspace runtime versions").

    The file name picks the string (``librknnrt*``: ``librknnrt version:``, ``librkllmrt*``:
    ``rkllm-runtime version:``); another name gets both, and the librkllmrt one wins, as
    librkllmrt embeds RKNN. OSError propagates."""
    name = Path(path).name
    rknn, rkllm = (_LIBRKNNRT, librknnrt_version), (_LIBRKLLMRT, librkllmrt_version)
    kinds = (rknn,) if name.startswith("librknnrt") else (rkllm,) if name.startswith("librkllmrt") else (rkllm, rknn)
    found: dict = {}
    carry = ""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            text = carry + chunk.decode("latin-1")
            end = len(text) - _MARGIN if chunk else len(text)
            for pattern, parse in kinds:
                m = None if pattern in found else pattern.search(text)
                if m and m.end() <= end:
                    found[pattern] = parse(m[0])
            if kinds[0][0] in found or not chunk:
                break
            carry = text[-_KEEP:]
    return next((found[pattern] for pattern, _ in kinds if pattern in found), None)


# --- RK3576 facts ------------------------------------------------------------------------------


@attr.s(frozen=True, kw_only=True)
class SocFacts:
    """What the suite relies on about one SoC; board paths as the vendor 6.1 BSP names them."""

    soc = attr.ib()
    compatible = attr.ib()  # the last /proc/device-tree/compatible entry
    npu_cores = attr.ib()
    devfreq_npu = attr.ib()  # nodes under /sys/class/devfreq
    devfreq_gpu = attr.ib()
    devfreq_ddr = attr.ib()
    cpufreq_policies = attr.ib()  # policy -> (cpus, core)
    fix_freq = attr.ib()  # what rknn-llm's scripts/fix_freq_<soc>.sh writes (cpufreq in kHz)
    npu_max_freq_hz = attr.ib()  # highest NPU OPP: devfreq clamps fix_freq's request to it
    thermal_zones = attr.ib()  # /sys/class/thermal/thermal_zoneN/type, in device-tree order

    @property
    def npu_core_mask(self) -> int:
        return (1 << self.npu_cores) - 1


RK3576 = SocFacts(
    soc="RK3576",
    compatible="rockchip,rk3576",
    npu_cores=2,  # rk3576_npu_irqs = {npu0_irq, npu1_irq}, core_mask 0x3
    devfreq_npu="27700000.npu",
    devfreq_gpu="27800000.gpu",
    devfreq_ddr="dmc",
    cpufreq_policies={"policy0": ((0, 1, 2, 3), "cortex-a53"), "policy4": ((4, 5, 6, 7), "cortex-a72")},
    fix_freq={"npu": 1_000_000_000, "cpu_policy0": 2_208_000, "cpu_policy4": 2_304_000,
              "gpu": 950_000_000, "ddr": 2_112_000_000},
    npu_max_freq_hz=950_000_000,  # standard RK3576 (RK3576J/M: 850 MHz, RK3576S: 500 MHz)
    thermal_zones=("soc-thermal", "bigcore-thermal", "little-core-thermal", "ddr-thermal", "npu-thermal",
                   "gpu-thermal"),
)
NPU_CORES_BY_SOC = {"RK3576": 2, "RK3588": 3}

# Multimodal demo sizes: the vision encoder outputs (image tokens, embed size), and the embed
# size is the LLM's hidden size ("3B" is Qwen2.5-VL-3B; Qwen2-VL has no 3B).
EMBED_SIZE = {"qwen2-vl-2b": 1536, "qwen2.5-vl-3b": 2048, "qwen2-vl-7b": 3584}
IMAGE_SIZE = (392, 392)  # height, width the Qwen2-VL / Qwen2.5-VL demos are exported with
IMAGE_TOKENS = 196


def image_tokens(height: int, width: int, patch: int = 14, merge: int = 2) -> int:
    """Image tokens of a Qwen2-VL-style encoder: 14-pixel patches merged 2x2 (392x392 -> 196)."""
    return (height // patch) * (width // patch) // (merge * merge)
