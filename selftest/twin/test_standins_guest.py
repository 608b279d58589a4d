"""The RKLLM demo stand-ins on a booted twin: deployed over SFTP as the suite will, run
over SSH, observed from outside: their output, exit status, dmesg and the bench faults
that act on them (decode-slow, oom-kill).
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from hil.twin import models, standins
from hil.paths import IMAGES_DIR
from hil.kit.pictures import sha256_file
from selftest.twin.conftest import run, ssh_client, wait_in_guest

REMOTE = "/userdata/rkllm"
PICTURE = IMAGES_DIR / "pictures" / "red-circle.png"


def _put_tree(sftp, local: Path, remote: str) -> None:
    try:
        sftp.mkdir(remote)
    except OSError:
        pass
    for path in sorted(local.iterdir()):
        target = f"{remote}/{path.name}"
        if path.is_dir():
            _put_tree(sftp, path, target)
        else:
            sftp.put(str(path), target)
            sftp.chmod(target, path.stat().st_mode & 0o777)


@pytest.fixture(scope="module")
def board(start_bench, tmp_path_factory):
    """A booted twin-good board with the 1.2.1 demo bundle, models and a picture deployed."""
    bench = start_bench(boards=1, timescale=0.05)
    bench.call("GET", "/outlet/1/1")
    local = tmp_path_factory.mktemp("deploy")
    standins.write_bundle(local, "1.2.1")
    models.write_models(local / "models", ["qwen2-vl-2b-instruct_w4a16_rk3576", "qwen2.5-vl-3b-w4a16_level1_rk3576",
                                           "qwen2-vl-2b-instruct_w8a8_rk3588"])
    client = ssh_client(bench)
    run(client, f"mkdir -p {REMOTE}")
    sftp = client.open_sftp()
    _put_tree(sftp, local, REMOTE)
    sftp.put(str(PICTURE), f"{REMOTE}/picture.png")
    yield bench, client
    client.close()


def demo(client, model: str, stdin: str, core_num: int = 2, env: str = "RKLLM_LOG_LEVEL=1") -> tuple[int, str]:
    d = f"{REMOTE}/demo_Linux_aarch64"
    llm, vision = models.files_of(model)
    cmd = (f"cd {d} && printf '{stdin}' | {env} LD_LIBRARY_PATH=./lib ./demo {REMOTE}/picture.png "
           f"{REMOTE}/models/{vision} {REMOTE}/models/{llm} 128 512 {core_num}")
    return run(client, cmd, timeout=120)


def decode_rates(out: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^I rkllm:\s+Generate\s+[\d.]+\s+\d+\s+[\d.]+\s+([\d.]+)", out, re.M)]


def test_demo_answers_the_picture_with_1_2_1_log_format(board):
    _, client = board
    rc, out = demo(client, "qwen2-vl-2b-instruct_w4a16_rk3576", "0\\nexit\\n")
    assert rc == 0, out[-1500:]
    assert "I rkllm: rkllm-runtime version: 1.2.1, rknpu driver version: 0.9.8, platform: RK3576" in out
    assert re.search(r"I rkllm: rkllm-toolkit version: \S+, max_context_limit: 4096, npu_core_num: 2, "
                     r"target_platform: RK3576, model_dtype: W4A16", out)
    llm = models.rkllm_bytes(models.MODELS["qwen2-vl-2b-instruct_w4a16_rk3576"])
    expected = models.answer(llm, "<image>What is in the image?", sha256_file(PICTURE))
    assert "robot: " + expected.strip()[:40] in out
    assert "I rkllm:  Peak Memory Usage (GB)" in out
    assert re.search(r"^I rkllm: -{86}$", out, re.M)
    rate = decode_rates(out)[0]
    assert 13.0 < rate < 16.0, f"decode {rate} tok/s is not near the published 14.57"


def test_embed_size_mismatch_segfaults_like_the_1_2_1_demo(board):
    _, client = board
    rc, out = demo(client, "qwen2.5-vl-3b-w4a16_level1_rk3576", "0\\nexit\\n")
    assert rc == 139, out[-800:]
    assert "main: ImgEnc Model loaded in" in out


def test_rk3588_model_fails_init(board):
    _, client = board
    rc, out = demo(client, "qwen2-vl-2b-instruct_w8a8_rk3588", "exit\\n")
    assert "target_platform: RK3588" in out
    assert "rkllm init failed" in out and rc != 0


def test_core_num_3_prints_the_mask_error_and_carries_on(board):
    _, client = board
    rc, out = demo(client, "qwen2-vl-2b-instruct_w4a16_rk3576", "exit\\n", core_num=3)
    assert re.search(r"E RKNN: \[\d\d:\d\d:\d\d\.\d{3}\] rknn_set_core_mask: unavailable core mask found for "
                     r"current platform! max core mask = 3", out)
    assert rc == 0


def test_decode_slow_fault_slows_decoding(board):
    bench, client = board
    base = [r for _ in range(3) for r in decode_rates(demo(client, "qwen2-vl-2b-instruct_w4a16_rk3576", "0\\nexit\\n")[1])]
    bench.call("PUT", "/fault/1/decode-slow", b"30")
    try:
        wait_in_guest(client, "[ -e /run/twin/fault/decode-slow ]")
        slow = [r for _ in range(3) for r in decode_rates(demo(client, "qwen2-vl-2b-instruct_w4a16_rk3576", "0\\nexit\\n")[1])]
    finally:
        bench.call("DELETE", "/fault/1/decode-slow")
    ratio = statistics.median(slow) / statistics.median(base)
    assert 0.62 < ratio < 0.78, f"decode-slow 30 gave a ratio of {ratio:.2f}"


def test_oom_kill_fault(board):
    bench, client = board
    bench.call("PUT", "/fault/1/oom-kill", b"1")
    try:
        wait_in_guest(client, "[ -e /run/twin/fault/oom-kill ]")
        rc, out = demo(client, "qwen2-vl-2b-instruct_w4a16_rk3576", "0\\nexit\\n")
    finally:
        bench.call("DELETE", "/fault/1/oom-kill")
    assert rc == 137, out[-500:]
    assert re.search(r"Out of memory: Killed process \d+ \(demo\)", run(client, "dmesg | tail -5")[1])


def test_npu_load_and_temperature_rise_while_the_demo_runs(board):
    """Sampled from debugfs and the thermal zone during a run, as eval_perf_watch_npu.sh does."""
    _, client = board
    d = f"{REMOTE}/demo_Linux_aarch64"
    llm, vision = (f"{REMOTE}/models/{f}" for f in models.files_of("qwen2-vl-2b-instruct_w4a16_rk3576"))
    zone = "$(grep -l npu-thermal /sys/class/thermal/thermal_zone*/type | head -1 | xargs dirname)"
    script = (
        f"z={zone}; t0=$(cat $z/temp); "
        f"(cd {d} && printf '0\\n0\\nexit\\n' | LD_LIBRARY_PATH=./lib ./demo {REMOTE}/picture.png {vision} "
        f"{llm} 128 512 2 > /tmp/demo.out 2>&1) & pid=$!; max0=0; max1=0; tmax=$t0; "
        "while kill -0 $pid 2>/dev/null; do "
        "  set -- $(awk -F'[:%, ]+' '/NPU load:/ {print $4, $6}' /sys/kernel/debug/rknpu/load); "
        "  [ \"$1\" -gt $max0 ] && max0=$1; [ \"$2\" -gt $max1 ] && max1=$2; "
        "  t=$(cat $z/temp); [ $t -gt $tmax ] && tmax=$t; usleep 50000; done; "
        "echo $max0 $max1 $t0 $tmax; "
        # the load file shows the last whole window: idle once one has passed after the run
        "n=0; while [ $n -lt 40 ] && ! grep -q 'Core0:  0%, Core1:  0%' /sys/kernel/debug/rknpu/load; do "
        "usleep 50000; n=$((n + 1)); done; cat /sys/kernel/debug/rknpu/load"
    )
    rc, out = run(client, script, timeout=120)
    core0, core1, t0, tmax = (int(x) for x in out.split()[:4])
    assert core0 >= 50 and core1 >= 50, f"NPU load never showed: {out}"
    assert tmax > t0, f"npu-thermal did not rise under load: {t0} -> {tmax}"
    assert out.rstrip().endswith("Core0:  0%, Core1:  0%,"), f"load not back to idle after the run: {out}"
