"""The twin's Rockchip surface: generated guest files and the module build plumbing."""

from __future__ import annotations

import gzip
import io
import re
import shutil
from pathlib import Path

import pytest

from hil.twin import surface
from hil.twin.cpio import CpioWriter

GUEST = Path(surface.__file__).parent / "guest" / "rootfs"


def _cpio_entries(cpio: CpioWriter) -> dict[str, bytes]:
    """Parse a newc archive back into {name: data}."""
    raw, out, pos = cpio.to_bytes(), {}, 0
    while True:
        head = raw[pos : pos + 110]
        size, namesize = int(head[54:62], 16), int(head[94:102], 16)
        name = raw[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = raw[pos : pos + size]
        pos += size + (-size % 4)


def test_cpuinfo_has_four_a53_then_four_a72():
    text = surface.cpuinfo().decode()
    blocks = text.strip().split("\n\n")
    assert [re.search(r"^processor\t: (\d+)$", b, re.M).group(1) for b in blocks] == [str(n) for n in range(8)]
    parts = [re.search(r"^CPU part\t: (0x[0-9a-f]+)$", b, re.M).group(1) for b in blocks]
    assert parts == ["0xd03"] * 4 + ["0xd08"] * 4
    for block in blocks:
        assert "CPU implementer\t: 0x41" in block and "CPU architecture: 8" in block
        assert block.splitlines()[2].startswith("Features\t: fp asimd")


def test_device_tree_compatible_is_nul_separated_and_ends_in_rk3576():
    tree = surface.device_tree("myd-lr3576", "0123456789abcdef")
    assert tree["compatible"] == b"myir,myd-lr3576\0rockchip,rk3576\0"
    assert tree["compatible"].rstrip(b"\0").split(b"\0")[-1] == b"rockchip,rk3576"
    assert tree["model"] == b"MYIR MYD-LR3576 Board\0"
    assert tree["npu@27700000/compatible"] == b"rockchip,rk3576-rknpu\0"
    assert tree["#address-cells"] == b"\0\0\0\2"
    cpus = {k: v for k, v in tree.items() if re.fullmatch(r"cpus/cpu@[0-9a-f]+/compatible", k)}
    assert sorted(cpus.values()) == [b"arm,cortex-a53\0"] * 4 + [b"arm,cortex-a72\0"] * 4


def test_unknown_board_still_ends_in_rk3576():
    tree = surface.device_tree("evb1-v10", "x")
    assert tree["compatible"].endswith(b"\0rockchip,rk3576\0")


def test_serial_number_is_stable_per_image():
    a = surface.serial_number({"build": {"id": "MYD-LR3576-TWIN-twin-good"}})
    b = surface.serial_number({"build": {"id": "MYD-LR3576-TWIN-twin-slow-npu"}})
    assert re.fullmatch(r"[0-9a-f]{16}", a) and a != b
    assert a == surface.serial_number({"build": {"id": "MYD-LR3576-TWIN-twin-good"}})


def test_add_files_places_module_and_mount_sources(monkeypatch):
    monkeypatch.setitem(surface._modules, "6.1.0-99-arm64", b"\x7fELF-fake-ko")
    cpio = CpioWriter()
    manifest = {"kernel": {"release": "6.1.0-99-arm64", "package": "6.1.999-1"},
                "build": {"id": "X", "board": "myd-lr3576"}}
    surface.add_files(cpio, manifest)
    entries = _cpio_entries(cpio)
    assert entries["lib/modules/6.1.0-99-arm64/extra/rknpu.ko"] == b"\x7fELF-fake-ko"
    assert entries["usr/share/twin/surface/cpuinfo"] == surface.cpuinfo()
    assert entries["usr/share/twin/surface/devicetree/compatible"] == b"myir,myd-lr3576\0rockchip,rk3576\0"
    # the overlay must survive gzip round trips as the builder writes it
    assert gzip.GzipFile(fileobj=io.BytesIO(cpio.to_gzip())).read() == cpio.to_bytes()


def test_guest_scripts_use_the_module_paths_the_builder_installs():
    rc = (GUEST / "usr/libexec/twin/rockchip-surface").read_text()
    assert f"extra/{surface.KMOD_NAME}" in rc and surface.SHARE.removeprefix("usr") in rc
    assert 'driver_version="${TWIN_RKNPU_DRIVER' in rc and 'npu_freq_cap="${TWIN_NPU_FREQ_CAP' in rc
    npu = (GUEST / "usr/libexec/twin/npu").read_text()
    assert "/sys/module/rknpu/parameters/twin_load" in npu
    assert "module_param_cb(twin_load" in (surface.KMOD_SOURCE / "rknpu.c").read_text()


def test_fix_freq_script_keeps_rockchips_shebang_steps_and_headings():
    text = (GUEST / "usr/bin/fix_freq_rk3576.sh").read_text()
    assert text.startswith("#!/system/bin/sh\n")
    headings = re.findall(r'^echo "([^"]+)"$', text, re.M)
    assert headings == [
        "NPU available frequencies:", "Fix NPU max frequency:", "CPU available frequencies:",
        "Fix CPU max frequency:", "GPU available frequencies:", "Fix GPU max frequency:",
        "DDR available frequencies:", "Fix DDR max frequency:",
    ]
    for value, path in [("1000000000", "27700000.npu/userspace/set_freq"), ("2208000", "policy0/scaling_setspeed"),
                        ("2304000", "policy4/scaling_setspeed"), ("950000000", "27800000.gpu/userspace/set_freq"),
                        ("2112000000", "dmc/userspace/set_freq")]:
        assert re.search(rf"^echo {value} > \S+{re.escape(path)}$", text, re.M), path


def _headers(**over):
    base = [{"package": "linux-headers-6.1.0-1-arm64", "version": "6.1.1-1", "sha256": "aa"},
            {"package": "linux-headers-6.1.0-1-common", "version": "6.1.1-1", "sha256": "bb"}]
    base[0].update(over)
    return base


def test_module_digest_follows_headers_compiler_and_source(tmp_path, monkeypatch):
    d = surface.module_digest(_headers(), "gcc 12.2.0")
    assert d == surface.module_digest(_headers(), "gcc 12.2.0")
    assert d != surface.module_digest(_headers(sha256="cc"), "gcc 12.2.0")
    assert d != surface.module_digest(_headers(), "gcc 12.3.0")
    src = tmp_path / "kmod"
    shutil.copytree(surface.KMOD_SOURCE, src)
    monkeypatch.setattr(surface, "KMOD_SOURCE", src)
    assert surface.module_digest(_headers(), "gcc 12.2.0") == d
    (src / "rknpu.c").write_text((src / "rknpu.c").read_text() + "\n/* changed */\n")
    assert surface.module_digest(_headers(), "gcc 12.2.0") != d


def test_prepare_headers_points_debian_headers_at_the_extracted_tree(tmp_path):
    kver = "6.1.0-1-arm64"
    arch = tmp_path / "usr/src" / f"linux-headers-{kver}"
    arch.mkdir(parents=True)
    (arch / "Makefile").write_text("include /usr/src/linux-headers-6.1.0-1-common/Makefile\n")
    (arch / "scripts").symlink_to(f"../../lib/linux-kbuild-{surface.KBUILD_SERIES}/scripts")
    host = Path("/usr/lib") / f"linux-kbuild-{surface.KBUILD_SERIES}"
    if not (host / "scripts").is_dir():
        with pytest.raises(surface.SurfaceError, match="install"):
            surface._prepare_headers(tmp_path, kver)
        return
    assert surface._prepare_headers(tmp_path, kver) == arch
    assert (arch / "Makefile").read_text() == f"include {tmp_path}/usr/src/linux-headers-6.1.0-1-common/Makefile\n"
    assert (arch / "scripts").resolve() == (host / "scripts").resolve()


def test_build_module_refuses_headers_of_another_kernel_build(tmp_path, monkeypatch):
    monkeypatch.setattr(surface, "_header_packages", lambda apt, kver: _headers(version="6.1.2-1"))
    monkeypatch.setattr(surface, "_tool_version", lambda tool: "gcc 12")
    with pytest.raises(surface.SurfaceError, match="6.1.2-1 but the kernel is 6.1.1-1"):
        surface.build_module(None, "6.1.0-1-arm64", tmp_path, kernel_version="6.1.1-1")


def test_build_module_returns_the_cached_module_without_building(tmp_path, monkeypatch):
    monkeypatch.setattr(surface, "_header_packages", lambda apt, kver: _headers())
    monkeypatch.setattr(surface, "_tool_version", lambda tool: "gcc 12")
    digest = surface.module_digest(_headers(), "gcc 12")
    (tmp_path / digest).mkdir()
    (tmp_path / digest / surface.KMOD_NAME).write_bytes(b"cached-ko")
    assert surface.build_module(None, "6.1.0-1-arm64", tmp_path, kernel_version="6.1.1-1") == b"cached-ko"


def test_host_packages_name_the_kbuild_series_and_cross_compiler():
    assert f"linux-kbuild-{surface.KBUILD_SERIES}" in surface.HOST_PACKAGES
    assert "gcc-aarch64-linux-gnu" in surface.HOST_PACKAGES
    assert set(surface.missing_host_packages()) <= set(surface.HOST_PACKAGES)


def test_kernel_modules_are_the_devfreq_governors_the_surface_selects():
    source = (surface.KMOD_SOURCE / "rknpu.c").read_text()
    assert '"simple_ondemand"' in source  # the GPU's governor, from governor_simpleondemand.ko
    assert surface.KERNEL_MODULES == [
        "kernel/drivers/devfreq/governor_simpleondemand.ko",
        "kernel/drivers/devfreq/governor_userspace.ko",
    ]
