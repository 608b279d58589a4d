"""Platform: the board is an RK3576 with the right CPUs, memory, kernel and image."""

import re
import shlex

import pytest

from hil.rockchip import versions

A53, A72 = "0xd03", "0xd08"


def _read(shell, path: str) -> str:
    return "\n".join(shell.run_check(f"cat {shlex.quote(path)}", timeout=10))


def _key_values(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def test_device_tree_is_rk3576(shell, record_property):
    out = shell.run_check("tr '\\0' '\\n' < /proc/device-tree/compatible", timeout=10)
    record_property("compatible", " ".join(out))
    assert out and out[-1] == "rockchip,rk3576", f"device tree compatible is {out!r}; the last entry must be rockchip,rk3576"


def test_cpu_clusters(shell):
    parts = re.findall(r"^CPU part\s*:\s*(\S+)", _read(shell, "/proc/cpuinfo"), re.M)
    counts = {A53: parts.count(A53), A72: parts.count(A72)}
    assert counts == {A53: 4, A72: 4} and len(parts) == 8, \
        f"expected 4 Cortex-A53 ({A53}) + 4 Cortex-A72 ({A72}), /proc/cpuinfo lists parts {parts}"


@pytest.mark.figures("memory_total_mib")
def test_memory_size(shell, measure, model_limits):
    match = re.search(r"^MemTotal:\s+(\d+) kB", _read(shell, "/proc/meminfo"), re.M)
    assert match, "/proc/meminfo has no MemTotal line"
    measure("memory_total_mib", int(match.group(1)) / 1024, "MiB").within(model_limits)


def test_kernel_supported_by_rknpu(shell, npu, record_property):
    release = shell.run_check("uname -r", timeout=10)[0]
    driver = npu.driver_version()
    record_property("kernel_release", release)
    ok, reason = versions.driver_supports_kernel(driver, release)
    assert ok, f"kernel {release} with RKNPU driver {driver}: {reason}"


@pytest.fixture(scope="module")
def image(suite_config):
    if suite_config.image is None:
        pytest.skip("no --image given: nothing to compare the board's OS release and build info with")
    return suite_config.image


def test_os_release_matches_image(shell, image):
    found = _key_values(_read(shell, "/etc/os-release"))
    wrong = {k: (v, found.get(k)) for k, v in image.os_release.items() if found.get(k) != str(v)}
    assert not wrong, f"/etc/os-release differs from image {image.name}: " + ", ".join(
        f"{k} is {got!r}, manifest says {want!r}" for k, (want, got) in wrong.items())


def test_build_info_matches_image(shell, image, record_property):
    found = _key_values(_read(shell, "/etc/build-info"))
    record_property("build_id", found.get("BUILD_ID", ""))
    wrong = {k: (v, found.get(f"BUILD_{k.upper()}")) for k, v in image.build.items()
             if found.get(f"BUILD_{k.upper()}") != str(v)}
    assert not wrong, f"/etc/build-info differs from image {image.name}: " + ", ".join(
        f"BUILD_{k.upper()} is {got!r}, manifest says {want!r}" for k, (want, got) in wrong.items())
