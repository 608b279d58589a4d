"""hil.rockchip.rknpu against the driver's file formats and console lines (rockchip.md §5, §10), real
captures from public threads (named at each), and ``hil parse npu``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
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
    ("NPU load:  5%\n", {"NPU": 5}),  # single-core SoC
    ("NPU load:   %\n", {"NPU": 0}),
    # real captures
    ("NPU load:  Core0:  0%, Core1:  0%,", {"Core0": 0, "Core1": 0}),  # RK3576, ophub/fnnas#620
    ("NPU load:  Core0:  21%, Core1:  11%, Core2:  0%,", {"Core0": 21, "Core1": 11, "Core2": 0}),  # rknn-toolkit2#269
    ("NPU load:  Core0: 86%, Core1: 84%, Core2: 61%,", {"Core0": 86, "Core1": 84, "Core2": 61}),  # henrygd/beszel#885
    ("NPU load:  0%", {"NPU": 0}),  # RV1126B idle, nicolargo/glances#3499
    ("NPU load: 48%", {"NPU": 48}),  # RV1126B under inference, nicolargo/glances#3499
])
def test_load(text, load):
    assert rknpu.parse_load(text) == load
    assert rknpu.load_anomalies(load) == []


def test_a_core_above_100_percent_is_kept_as_printed_and_named():
    """The driver's miscount: rockchip-linux/rknpu2#102 (after a failed submit; no trailing comma)."""
    load = rknpu.parse_load("NPU load:  Core0: 99%, Core1: 99%, Core2: 429496%")
    assert load == {"Core0": 99, "Core1": 99, "Core2": 429496}
    assert rknpu.load_anomalies(load) == ["Core2 at 429496 % (above 100 %: a driver miscount, not a load)"]
    # rockchip-linux/rknn-toolkit2#293 tells of 20000 % (no line quoted): the same on Core0, and 100 is no anomaly
    assert rknpu.load_anomalies({"Core0": 20000, "Core1": 100}) == [
        "Core0 at 20000 % (above 100 %: a driver miscount, not a load)"]


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


# A hung NPU recovered by the driver, as public reports quote it: an Orange Pi (rknpu 0.9.x, RK3588) and a
# core that never acknowledged its job (RK3588, an iommu-less NPU node).
NPU_RESETS = """\
[  605.159276] RKNPU: failed to wait job, task counter: 0, flags: 0x5, ret = 0, elapsed time: 6160643us
[  605.267268] RKNPU: job timeout, flags: 0x0, irq status: 0x0, raw status: 0x0, require mask: 0x300, task counter: 0x0, elapsed time: 6268640us
[  605.375257] RKNPU: soft reset
[  608.023253] RKNPU: job abort, flags: 0x0, ret: -512, elapsed time: 2632132us
kern:  info: RKNPU: soft reset, num: 1
"""


def test_scan_console_names_npu_resets_and_their_timeouts():
    found = rknpu.scan_console(NPU_RESETS)
    assert [f.kind for f in found] == ["rknpu_error", "npu_reset", "npu_reset", "npu_reset", "npu_reset"]
    assert found[4].line == "kern:  info: RKNPU: soft reset, num: 1"


def test_scan_console_of_a_clean_boot():
    clean = "\n".join(CONSOLE.splitlines()[:2] + CONSOLE.splitlines()[-1:])
    assert rknpu.scan_console(clean) == []


# --- parse_capture and hil parse npu: real captures, each from the thread named -------------------

FNNAS_620 = """seeed@seeed:/$ sudo cat /proc/rknpu/load 
NPU load:  Core0:  0%, Core1:  0%,
seeed@seeed:/$ sudo cat /sys/kernel/debug/rknpu/version
RKNPU driver: v0.9.8
seeed@seeed:/tmp/rk3576_linux_aarch64/rknn_yolov5_demo$ ls /dev/dri/
by-path  card0  card1  renderD128
"""  # ophub/fnnas#620: RK3576, kernel 6.18, with the output of another command after

MARCA711_3 = """# cat /sys/kernel/debug/rknpu/load 
NPU load:  Core0:  4%, Core1:  0%, Core2:  0%,
# cat /sys/kernel/debug/rknpu/freq 
1000000000
# cat /sys/kernel/debug/rknpu/volt 
800000
"""  # MarcA711/Rockchip-FFmpeg-Builds#3: RK3588 as root; volt is a driver file this parser skips

RKNN_LLM_39 = """(base) rock@rock-5b:/proc$ cat /sys/module/rknpu/version 
0.9.6
(base) rock@rock-5b:/proc$ uname -a
Linux rock-5b 5.10.110-50-rockchip-g5db04e2aa688 #rockchip SMP Thu May 2 02:52:04 PDT 2024 aarch64 GNU/Linux
(base) rock@rock-5b:/proc$ 
"""  # airockchip/rknn-llm#39: the sysfs module version behind a conda prompt

RKTOP_5 = """:~$ `sudo cat /sys/kernel/debug/rknpu/load`
`NPU load:  Core0: 63%, Core1: 65%, Core2: 64%,`
"""  # ajokela/rktop#5: pasted in Markdown backticks

RKNPU2_102 = "查看NPU负载：\nNPU load:  Core0: 99%, Core1: 99%, Core2: 429496%\n"  # rockchip-linux/rknpu2#102

BRIEF = """root@rk3576:~# cat /sys/kernel/debug/rknpu/version
RKNPU driver: v0.9.8
root@rk3576:~# cat /sys/kernel/debug/rknpu/load
NPU load:  Core0:  0%, Core1:  0%,
root@rk3576:~# cat /sys/kernel/debug/rknpu/freq
1000000000
"""  # the formats of rockchip.md §5 (RK3576, driver 0.9.8), as a serial console shows them


@pytest.mark.parametrize("text, expected", [
    (FNNAS_620, {"driver_version": "0.9.8", "load": {"Core0": 0, "Core1": 0}, "freq_hz": None, "anomalies": []}),
    (MARCA711_3, {"driver_version": None, "load": {"Core0": 4, "Core1": 0, "Core2": 0}, "freq_hz": 1_000_000_000,
                  "anomalies": []}),
    (RKNN_LLM_39, {"driver_version": "0.9.6", "load": None, "freq_hz": None, "anomalies": []}),
    (RKTOP_5, {"driver_version": None, "load": {"Core0": 63, "Core1": 65, "Core2": 64}, "freq_hz": None,
               "anomalies": []}),
    (RKNPU2_102, {"driver_version": None, "load": {"Core0": 99, "Core1": 99, "Core2": 429496}, "freq_hz": None,
                  "anomalies": ["load: Core2 at 429496 % (above 100 %: a driver miscount, not a load)"]}),
    (BRIEF, {"driver_version": "0.9.8", "load": {"Core0": 0, "Core1": 0}, "freq_hz": 1_000_000_000, "anomalies": []}),
], ids=["fnnas#620", "ffmpeg-builds#3", "rknn-llm#39", "rktop#5", "rknpu2#102", "rk3576"])
def test_capture_of_the_driver_files(text, expected):
    assert rknpu.parse_capture(text) == expected


def test_capture_over_a_serial_console_and_as_bare_lines():
    """CRLF (CR CR LF too), colour in the prompt, the prompt left waiting at the end; the same
    lines without prompts and commands give the same facts."""
    prompt = "\x1b[01;32mroot@rk3576\x1b[00m:\x1b[01;34m~\x1b[00m# "
    serial = BRIEF.replace("root@rk3576:~# ", prompt).replace("\n", "\r\r\n") + prompt
    assert rknpu.parse_capture(serial) == rknpu.parse_capture(BRIEF)
    bare = "RKNPU driver: v0.9.8\r\nNPU load:  Core0:  0%, Core1:  0%,\r\n1000000000\r\n"
    assert rknpu.parse_capture(bare) == rknpu.parse_capture(BRIEF)


def test_capture_names_what_does_not_parse():
    text = ("root@rk3576:~# cat /sys/kernel/debug/rknpu/freq\n"
            "cat: can't open '/sys/kernel/debug/rknpu/freq': Permission denied\n"
            "root@rk3576:~# cat /sys/kernel/debug/rknpu/version\nRKNPU driver: unknown\n"
            "root@rk3576:~# cat /sys/kernel/debug/rknpu/load\nNPU load: busy\n")
    out = rknpu.parse_capture(text)
    assert (out["driver_version"], out["load"], out["freq_hz"]) == (None, None, None)
    assert out["anomalies"] == [
        "freq: not a clock rate in Hz: \"cat: can't open '/sys/kernel/debug/rknpu/freq': Permission denied\"",
        "version: not an RKNPU driver version: 'RKNPU driver: unknown'",
        "load: no load figure in 'NPU load: busy'",
    ]


def test_capture_of_several_files_in_one_command_keeps_the_last_reading():
    text = ("root@rk3576:~# cat /sys/kernel/debug/rknpu/load /sys/kernel/debug/rknpu/freq\n"
            "NPU load:  Core0: 10%, Core1:  5%,\n950000000\n"
            "root@rk3576:~# watch -n 1 cat /sys/kernel/debug/rknpu/load\n"
            "Every 1.0s: cat /sys/kernel/debug/rknpu/load          rk3576: Tue Mar 12 10:00:00 2024\n\n"
            "NPU load:  Core0: 88%, Core1: 91%,\n"
            "root@rk3576:~# cat /sys/class/devfreq/27700000.npu/cur_freq\n950000000\n")
    out = rknpu.parse_capture(text)
    assert out == {"driver_version": None, "load": {"Core0": 88, "Core1": 91}, "freq_hz": 950_000_000,
                   "anomalies": []}, "devfreq's cur_freq is another file: skipped"


def test_capture_with_nothing_of_the_driver():
    assert rknpu.parse_capture("") == {"driver_version": None, "load": None, "freq_hz": None, "anomalies": []}
    assert rknpu.parse_capture(CONSOLE)["anomalies"] == []


HIL = Path(sys.executable).parent / "hil"


def test_hil_parse_npu_through_main(tmp_path, capsys):
    path = tmp_path / "capture.txt"
    path.write_bytes(RKNPU2_102.encode())
    assert cli.main(["parse", "npu", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == rknpu.parse_capture(RKNPU2_102) and err == ""
    assert out.startswith('{\n  "driver_version": null,\n')
    assert cli.main(["parse", "npu", str(tmp_path / "missing")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: cannot read {tmp_path / 'missing'}: No such file or directory\n"
    path.write_text("hello\n")
    assert cli.main(["parse", "npu", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["load"] is None and err.startswith(f"warning: {path} holds no rknpu version, load")


def test_hil_parse_npu_as_a_command_reading_stdin():
    r = subprocess.run([str(HIL), "parse", "npu", "-"], input=FNNAS_620.replace("\n", "\r\n"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"driver_version": "0.9.8", "load": {"Core0": 0, "Core1": 0}, "freq_hz": None,
                                    "anomalies": []}
