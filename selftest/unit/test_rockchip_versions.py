"""hil.rockchip.versions: version order, the driver/runtime/kernel rules and the RK3576 facts."""

from __future__ import annotations

import pytest

from hil.rockchip import versions
from hil.rockchip.versions import RK3576


@pytest.mark.parametrize("text, release", [
    ("0.9.8", (0, 9, 8)), ("v0.9.8", (0, 9, 8)), ("1.2", (1, 2, 0)), ("1.2.1b1", (1, 2, 1)),
    ("2.3.3b0", (2, 3, 3)), (" 1.3.0\n", (1, 3, 0)),
])
def test_parse_version(text, release):
    assert versions.parse_version(text) == release


@pytest.mark.parametrize("text", ["unknown", "", "v", "RKNPU driver: v0.9.8"])
def test_parse_version_refuses_other_text(text):
    with pytest.raises(ValueError):
        versions.parse_version(text)


def test_order():
    ordered = ["0.9.6", "0.9.7", "0.9.8", "1.0.1", "1.1.4", "1.2.0", "1.2.1b1", "1.2.1", "1.2.3", "1.3.0"]
    assert sorted(reversed(ordered), key=versions.version_key) == ordered
    assert versions.compare("0.9.10", "0.9.8") == 1, "numeric, not text, order"
    assert versions.compare("1.2", "1.2.0") == 0
    assert versions.at_least("0.9.8", "0.9.7") and not versions.at_least("0.9.6", "0.9.7")


@pytest.mark.parametrize("runtime, driver", [
    ("1.0.1", "0.9.6"), ("1.0.2", "0.9.6"), ("1.1.0", "0.9.8"), ("1.1.4", "0.9.8"), ("1.2.1", "0.9.8"),
    ("1.2.1b1", "0.9.8"), ("1.3.0", "0.9.8"),
])
def test_required_driver(runtime, driver):
    assert versions.required_driver(runtime) == driver


@pytest.mark.parametrize("driver, kernel, ok, words", [
    ("0.9.8", "6.1.115-vendor-rk35xx", True, ["6.1"]),
    ("0.9.7", "6.1.75", True, ["6.1"]),
    ("0.9.6", "5.10.160-rockchip-rk3588", True, ["5.10"]),
    ("0.9.8", "6.18.0-ophub", False, ["rocket", "port"]),
    (None, "6.18.2", False, ["rocket"]),
    (None, "6.19.0-rc1", False, ["rocket"]),
    ("0.9.8", "6.6.30", False, ["BSP"]),
    (None, "6.1.115-vendor-rk35xx", False, ["no RKNPU driver", "CONFIG_ROCKCHIP_RKNPU"]),
])
def test_driver_supports_kernel(driver, kernel, ok, words):
    supported, reason = versions.driver_supports_kernel(driver, kernel)
    assert supported is ok
    for word in words:
        assert word in reason


def test_library_versions_from_strings():
    strings = "GCC: (GNU) 10.2.1\nlibrknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\nrknn_init\n"
    assert versions.librknnrt_version(strings) == versions.LibraryVersion("2.3.2", "429f97ae6b@2025-04-09T09:09:27")
    old = "I RKNN: [..] RKNN Runtime Information: librknnrt version: 1.4.0 (a10f100eb@2022-09-09T09:07:14)"
    assert versions.librknnrt_version(old).version == "1.4.0"
    assert versions.librkllmrt_version("x\nrkllm-runtime version: 1.2.1\ny").version == "1.2.1"
    assert versions.librkllmrt_version("rkllm-runtime version: %s") is None
    assert versions.librknnrt_version("") is None


def test_library_versions_of_the_twin_stand_in_libraries():
    from hil.twin.runtimelibs import runtime_library

    text = runtime_library("librknnrt.so", "2.3.2").decode("latin-1")
    assert versions.librknnrt_version(text).version == "2.3.2"
    assert versions.librkllmrt_version(runtime_library("librkllmrt.so", "1.2.3").decode()).version == "1.2.3"


def test_rk3576_facts():
    assert (RK3576.soc, RK3576.npu_cores, RK3576.npu_core_mask) == ("RK3576", 2, 0x3)
    assert (RK3576.devfreq_npu, RK3576.devfreq_gpu, RK3576.devfreq_ddr) == ("27700000.npu", "27800000.gpu", "dmc")
    assert RK3576.cpufreq_policies["policy0"] == ((0, 1, 2, 3), "cortex-a53")
    assert RK3576.cpufreq_policies["policy4"] == ((4, 5, 6, 7), "cortex-a72")
    assert RK3576.fix_freq == {"npu": 1000000000, "cpu_policy0": 2208000, "cpu_policy4": 2304000,
                               "gpu": 950000000, "ddr": 2112000000}
    assert RK3576.fix_freq["npu"] > RK3576.npu_max_freq_hz == 950000000, "1 GHz clamps to the top OPP"
    assert RK3576.thermal_zones[-2:] == ("npu-thermal", "gpu-thermal") and len(RK3576.thermal_zones) == 6
    assert versions.EMBED_SIZE == {"qwen2-vl-2b": 1536, "qwen2.5-vl-3b": 2048, "qwen2-vl-7b": 3584}
    assert versions.image_tokens(*versions.IMAGE_SIZE) == versions.IMAGE_TOKENS == 196
    assert versions.image_tokens(476, 476) == 289  # the happyme531 Qwen2.5-VL build


def test_facts_agree_with_the_twin():
    from hil.twin import models

    assert {f.name: f.hidden_size for f in models.FAMILIES.values()} == versions.EMBED_SIZE
    assert (models.IMAGE_TOKENS, models.IMAGE_SIZE) == (versions.IMAGE_TOKENS, versions.IMAGE_SIZE[0])
