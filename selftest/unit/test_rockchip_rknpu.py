"""hil.rockchip.rknpu against the driver's file formats and console lines (rockchip.md §5, §10)."""

from __future__ import annotations

import pytest

from hil.rockchip import rknpu


@pytest.mark.parametrize("text, version", [
    ("RKNPU driver: v0.9.8\n", "0.9.8"),  # /sys/kernel/debug/rknpu/version
    ("RKNPU driver: v0.9.7", "0.9.7"),
    ("0.9.6\n", "0.9.6"),  # /sys/module/rknpu/version on older kernels
])
def test_driver_version_files(text, version):
    assert rknpu.parse_driver_version(text) == version


@pytest.mark.parametrize("text", ["", "RKNPU driver: unknown", "cat: can't open '/sys/kernel/debug/rknpu/version'"])
def test_driver_version_refuses_other_text(text):
    with pytest.raises(ValueError):
        rknpu.parse_driver_version(text)


@pytest.mark.parametrize("text, load", [
    ("NPU load:  Core0:  0%, Core1:  0%,\n", {"Core0": 0, "Core1": 0}),  # RK3576 idle
    ("NPU load:  Core0: 78%, Core1: 76%,\n", {"Core0": 78, "Core1": 76}),
    ("NPU load:  Core0: 100%, Core1:  7%,", {"Core0": 100, "Core1": 7}),
    ("NPU load:  Core0:  0%, Core1:  0%, Core2:  0%,", {"Core0": 0, "Core1": 0, "Core2": 0}),  # RK3588
    ("NPU load:  Core0:   %, Core1: 12%,", {"Core0": 0, "Core1": 12}),  # blank zero
    ("NPU load:  5%\n", {"Core0": 5}),  # single-core SoC
    ("NPU load:   %\n", {"Core0": 0}),
])
def test_load(text, load):
    assert rknpu.parse_load(text) == load


@pytest.mark.parametrize("text", ["", "Core0: 5%", "NPU load: busy"])
def test_load_refuses_other_text(text):
    with pytest.raises(ValueError):
        rknpu.parse_load(text)


def test_frequencies_and_temperature():
    opps = "300000000 400000000 500000000 600000000 700000000 800000000 900000000 950000000 \n"
    assert rknpu.parse_frequencies(opps)[-1] == 950000000
    assert len(rknpu.parse_frequencies(opps)) == 8
    assert rknpu.parse_millidegrees("45250\n") == 45.25
    assert rknpu.parse_millidegrees("-1500") == -1.5


CONSOLE = """\
[    3.101234] RKNPU 27700000.npu: RKNPU: rknpu iommu is enabled, using iommu mode\r
[    3.105678] [drm] Initialized rknpu 0.9.8 20240828 for 27700000.npu on minor 1\r
[    3.110000] RKNPU 27700000.npu: RKNPU: failed to add devfreq: -22\r
[    3.120000] RKNPU: probe of 27700000.npu failed with error -110\r
[   80.000000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008\r
[   80.000100] Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP\r
[   80.000200] Call trace:\r
[   80.000300]  rknpu_job_commit+0x40/0x1a0 [rknpu]\r
[   81.000000] BUG: scheduling while atomic: demo/812/0x00000002\r
[   90.000000] demo invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0\r
[   90.000100] Out of memory: Killed process 812 (demo) total-vm:6543210kB, anon-rss:3210987kB\r
[   95.000000] \x1b[31mKernel panic - not syncing: Fatal exception\x1b[0m\r
[   95.000100] RKNPU: set rknpu power put delay time 3000ms\r
"""


def test_scan_console_names_each_trouble_once():
    found = rknpu.scan_console(CONSOLE)
    assert [(f.kind, f.lineno) for f in found] == [
        ("rknpu_error", 3), ("rknpu_error", 4), ("oops", 5), ("oops", 6), ("call_trace", 7), ("bug", 9),
        ("oom_kill", 10), ("oom_kill", 11), ("panic", 12),
    ]
    assert found[0].line == "[    3.110000] RKNPU 27700000.npu: RKNPU: failed to add devfreq: -22"
    assert found[-1].line == "[   95.000000] Kernel panic - not syncing: Fatal exception"


def test_scan_console_of_a_clean_boot():
    clean = "\n".join(CONSOLE.splitlines()[:2] + CONSOLE.splitlines()[-1:])
    assert rknpu.scan_console(clean) == []
