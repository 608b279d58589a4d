"""The Rockchip surface inside booted twin boards, checked against reference/rockchip.md.

One bench per image (twin-good, twin-slow-npu, twin-old-driver), powered on together so
they boot in parallel; each test reads and writes the guest's files over SSH. Tests on
twin-good run in file order on one board: later ones (fix_freq_rk3576.sh) change state.
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from hil.twin import surface
from selftest.twin.conftest import run, ssh_client

pytestmark = pytest.mark.twin

IMAGES = ("twin-good", "twin-slow-npu", "twin-old-driver")
NPU_OPPS = "300000000 400000000 500000000 600000000 700000000 800000000 900000000 950000000"
LITTLE_KHZ = "408000 600000 816000 1008000 1200000 1416000 1608000 1800000 2016000 2208000 "
BIG_KHZ = LITTLE_KHZ + "2304000 "
ZONES = ["soc-thermal", "bigcore-thermal", "little-core-thermal", "ddr-thermal", "npu-thermal", "gpu-thermal"]
DEVFREQ = "/sys/class/devfreq/27700000.npu"
NPU_ZONE = "/sys/class/thermal/thermal_zone4/temp"
LITTLE_ZONE = "/sys/class/thermal/thermal_zone2/temp"


@pytest.fixture(scope="module")
def boards(start_bench):
    """image -> (bench, SSH client); the three boards boot at the same time."""
    benches = {image: start_bench(boards=1, image=image) for image in IMAGES}
    for bench in benches.values():
        status, body = bench.call("PUT", "/outlet/1", b"1")
        assert status == 200, body
    clients = {image: (bench, ssh_client(bench, timeout=90)) for image, bench in benches.items()}
    yield clients
    for _, client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def good(boards):
    return boards["twin-good"]


def sh(client, cmd: str) -> str:
    rc, out = run(client, cmd)
    assert rc == 0, f"{cmd!r} failed ({rc}): {out}"
    return out


def wait_until(probe, timeout: float, what: str):
    """Poll probe() until it returns something true; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.2)


def temp(client, path: str) -> int:
    return int(sh(client, f"cat {path}"))


# ---------------------------------------------------------------- rknpu files


@pytest.mark.parametrize("root", ["/sys/kernel/debug/rknpu", "/proc/rknpu"])
def test_rknpu_files_read_as_driver_098(good, root):
    _, client = good
    out = sh(client, f"cd {root} && for f in version load volt delayms reset; do cat $f; done")
    assert out.splitlines() == [
        "RKNPU driver: v0.9.8",
        "NPU load:  Core0:  0%, Core1:  0%,",
        "875000",
        "3000",
        "on",
    ]
    assert sh(client, f"cat {root}/freq") == "950000000\n"
    assert sh(client, f"cat {root}/power") in ("on\n", "off\n")
    assert sh(client, f"ls {root}").split() == sorted(["version", "load", "power", "freq", "volt", "delayms", "reset"])


def test_probe_lines_in_dmesg(good):
    _, client = good
    lines = [re.sub(r"^\[\s*\d+\.\d+\] ", "", l) for l in sh(client, "dmesg | grep -E 'RKNPU|\\[drm\\]'").splitlines()]
    assert lines == [
        "RKNPU 27700000.npu: RKNPU: rknpu iommu is enabled, using iommu mode",
        "[drm] Initialized rknpu 0.9.8 20240828 for 27700000.npu on minor 1",
        "RKNPU 27700000.npu: RKNPU: nbuf region: [0x000000003fe80000, 0x000000003ff80000), nbuf size: 0x100000",
    ]
    assert sh(client, "cat /sys/module/rknpu/version") == "0.9.8\n"


def test_power_follows_the_put_delay(good):
    _, client = good
    sh(client, "cat /sys/kernel/debug/rknpu/freq >/dev/null")  # the driver powers up to read the clock
    assert sh(client, "cat /sys/kernel/debug/rknpu/power") == "on\n"
    wait_until(lambda: sh(client, "cat /proc/rknpu/power") == "off\n", 10, "power off 3000 ms after the read")


def test_delayms_write_logs_as_the_driver(good):
    _, client = good
    sh(client, "echo 1500 > /sys/kernel/debug/rknpu/delayms")
    assert sh(client, "cat /proc/rknpu/delayms") == "1500\n"
    assert re.search(r"\] RKNPU: set rknpu power put delay time 1500ms$", sh(client, "dmesg | tail -1"), re.M)
    rc, out = run(client, "sh -c 'echo not-a-number > /proc/rknpu/delayms'")
    assert rc != 0 and "Bad address" in out  # the driver answers -EFAULT
    assert "RKNPU: failed to parse power put delay string: not-a-number" in sh(client, "dmesg | tail -1")
    sh(client, "echo 3000 > /proc/rknpu/delayms")


def test_freq_write_goes_through_devfreq(good):
    _, client = good
    sh(client, "echo 600000000 > /sys/kernel/debug/rknpu/freq")
    assert sh(client, f"cat {DEVFREQ}/cur_freq /proc/rknpu/freq /proc/rknpu/volt").split() == [
        "600000000", "600000000", "725000"]
    assert re.search(r"^\* 600000000:", sh(client, f"cat {DEVFREQ}/trans_stat"), re.M)
    sh(client, "echo 950000000 > /proc/rknpu/freq")
    assert sh(client, f"cat {DEVFREQ}/cur_freq") == "950000000\n"


# ---------------------------------------------------------------- devfreq


def test_npu_devfreq_is_the_rk3576_opp_table(good):
    _, client = good
    out = sh(client, f"cd {DEVFREQ} && cat governor min_freq max_freq available_frequencies")
    assert out.splitlines() == ["rknpu_ondemand", "300000000", "950000000", NPU_OPPS]
    governors = sh(client, f"cat {DEVFREQ}/available_governors").split()
    assert {"rknpu_ondemand", "userspace", "simple_ondemand", "performance", "powersave"} <= set(governors)
    rc, _ = run(client, f"echo no_such_governor > {DEVFREQ}/governor")
    assert rc != 0 and sh(client, f"cat {DEVFREQ}/governor") == "rknpu_ondemand\n"


def test_gpu_and_dmc_devfreq(good):
    _, client = good
    gpu = sh(client, "cd /sys/class/devfreq/27800000.gpu && cat governor cur_freq available_frequencies")
    assert gpu.splitlines() == [
        "simple_ondemand", "300000000",
        "300000000 400000000 500000000 600000000 700000000 800000000 900000000"]
    dmc = sh(client, "cd /sys/class/devfreq/dmc && cat governor available_frequencies")
    assert dmc.splitlines() == ["dmc_ondemand", "528000000 1068000000 1560000000 2112000000"]


# ---------------------------------------------------------------- CPUs, DT


def test_cpufreq_policies_and_userspace_setspeed(good):
    _, client = good
    base = "/sys/devices/system/cpu/cpufreq"
    # the RK3576's 0-3 and 4-7 on 8 CPUs; a smaller guest splits the CPUs it has into halves
    cpus = int(sh(client, "cat /sys/devices/system/cpu/possible").strip().rpartition("-")[2]) + 1
    half = cpus // 2 if cpus > 1 else 1
    little, big = " ".join(map(str, range(half))), " ".join(map(str, range(half if cpus > 1 else 0, cpus)))
    assert sh(client, f"cat {base}/policy0/related_cpus {base}/policy4/related_cpus") == f"{little} \n{big} \n"
    assert sh(client, f"cat {base}/policy0/scaling_available_frequencies") == LITTLE_KHZ + "\n"
    assert sh(client, f"cat {base}/policy4/scaling_available_frequencies") == BIG_KHZ + "\n"
    assert sh(client, f"cat {base}/policy4/cpuinfo_max_freq {base}/policy0/cpuinfo_max_freq") == "2304000\n2208000\n"
    assert sh(client, f"cat {base}/policy4/scaling_setspeed") == "<unsupported>\n"
    rc, _ = run(client, f"echo 1200000 > {base}/policy4/scaling_setspeed")
    assert rc != 0  # only the userspace governor takes a speed
    sh(client, f"echo userspace > {base}/policy4/scaling_governor && echo 1100000 > {base}/policy4/scaling_setspeed")
    assert sh(client, f"cat {base}/policy4/scaling_cur_freq") == "1200000\n"  # next OPP up
    rc, _ = run(client, f"echo turbo > {base}/policy4/scaling_governor")
    assert rc != 0 and sh(client, f"cat {base}/policy4/scaling_governor") == "userspace\n"
    for cpu in range(8):
        policy = "policy0" if cpu < 4 else "policy4"
        assert sh(client, f"readlink /sys/devices/system/cpu/cpu{cpu}/cpufreq") == f"../cpufreq/{policy}\n"
        assert sh(client, f"cat /sys/devices/system/cpu/cpu{cpu}/cpuidle/state1/name") == "cpu-sleep\n"


def test_cpuinfo_shows_four_a53_and_four_a72(good):
    _, client = good
    out = sh(client, "cat /proc/cpuinfo")
    assert re.findall(r"^CPU part\t: (\S+)$", out, re.M) == ["0xd03"] * 4 + ["0xd08"] * 4
    assert out.encode() == surface.cpuinfo()


def test_device_tree_identity(good):
    _, client = good
    compatible = sh(client, "od -An -c /proc/device-tree/compatible | tr -d ' \\n'")
    assert compatible.endswith("rockchip,rk3576\\0") and compatible.count("\\0") == 2
    assert sh(client, "tr -d '\\0' < /proc/device-tree/model") == "MYIR MYD-LR3576 Board"
    assert sh(client, "tr -d '\\0' < /proc/device-tree/npu@27700000/compatible") == "rockchip,rk3576-rknpu"
    rc, _ = run(client, "echo x > /proc/device-tree/model")
    assert rc != 0  # read-only, as the kernel's device tree


# ---------------------------------------------------------------- thermal


def test_thermal_zones_and_trips(good):
    _, client = good
    types = sh(client, "cat /sys/class/thermal/thermal_zone*/type").split()
    assert types == ZONES
    little = sh(client, "cd /sys/class/thermal/thermal_zone2 && cat trip_point_*_type trip_point_*_temp").split()
    assert little == ["passive", "passive", "critical", "75000", "85000", "115000"]
    for n in (0, 1, 3, 4, 5):
        assert sh(client, f"cat /sys/class/thermal/thermal_zone{n}/trip_point_0_temp") == "115000\n"
    for n in range(6):
        assert 30000 <= temp(client, f"/sys/class/thermal/thermal_zone{n}/temp") <= 60000


def test_npu_busy_heats_and_idle_cools(good):
    """The load file shows the last whole window (the driver's 1 s, time-scaled): a load set
    shows once a window has passed with it, and idle once one has passed without."""
    _, client = good
    before = temp(client, NPU_ZONE)
    sh(client, "/usr/libexec/twin/npu busy 100 70")
    wait_until(lambda: sh(client, "cat /sys/kernel/debug/rknpu/load") == "NPU load:  Core0: 100%, Core1: 70%,\n",
               10, "the load file shows the busy cores")
    assert sh(client, "cat /proc/rknpu/power") == "on\n"
    wait_until(lambda: temp(client, NPU_ZONE) >= before + 3000, 20, "npu-thermal rises 3 C under load")
    peak = temp(client, NPU_ZONE)
    sh(client, "/usr/libexec/twin/npu idle")
    wait_until(lambda: sh(client, "cat /proc/rknpu/load") == "NPU load:  Core0:  0%, Core1:  0%,\n",
               10, "the load file shows the idle cores")
    wait_until(lambda: temp(client, NPU_ZONE) <= peak - 1000, 20, "npu-thermal falls 1 C at idle")


def test_a_job_shorter_than_the_load_window_shows_as_part_of_it(good):
    """As the vendor driver counts busy time per window: with 1 s windows, 0.3 s at 80 %
    shows as a fraction of 80 % in the window(s) it fell in, for a whole window after it ended,
    and then 0; an instantaneous load would show 80 % or nothing. The module's busy count
    (what the npu-heating fault heats by) grows by the job's time."""
    _, client = good
    param = "/sys/module/rknpu/parameters/load_window_ms"
    busy = "/sys/module/rknpu/parameters/twin_busy_ms"
    window = sh(client, f"cat {param}").strip()
    try:
        sh(client, f"echo 1000 > {param}")
        out = sh(client, f"cat {busy}; /usr/libexec/twin/npu busy 80 80; usleep 300000; /usr/libexec/twin/npu idle; "
                         f"cat {busy}; n=0; while [ $n -lt 30 ]; do cat /proc/rknpu/load; usleep 100000; "
                         "n=$((n + 1)); done")
    finally:
        sh(client, f"echo {window} > {param}")
    before, after = (int(v) for v in out.split("\n")[:2])
    assert 300 <= after - before < 1500, f"busy count grew by {after - before} ms for a 0.3 s job"
    core0 = [int(m or 0) for m in re.findall(r"Core0: *(\d*)%", out)]
    assert len(core0) == 30, out
    assert any(0 < v < 80 for v in core0), f"no reading showed part of the 0.3 s job: {core0}"
    assert max(core0) < 80, f"a 0.3 s job filled a 1 s window: {core0}"
    assert core0[-1] == 0, f"the load did not fall back to idle: {core0}"


def test_thermal_throttle_fault(good):
    bench, client = good
    normal = int(sh(client, "/usr/libexec/twin/npu freq"))
    assert normal == 950000000
    status, body = bench.call("PUT", "/fault/1/thermal-throttle", b"1")
    assert status == 200, body
    wait_until(lambda: sh(client, "/usr/libexec/twin/npu freq") == "600000000\n", 20, "NPU throttled to 600 MHz")
    assert sh(client, "cat /sys/kernel/debug/rknpu/freq") == "600000000\n"
    wait_until(lambda: temp(client, LITTLE_ZONE) > 85000, 30, "little-core-thermal past its 85 C trip")
    assert temp(client, NPU_ZONE) > 85000
    status, body = bench.call("DELETE", "/fault/1/thermal-throttle")
    assert status == 200, body
    wait_until(lambda: sh(client, "/usr/libexec/twin/npu freq") == f"{normal}\n", 20, "NPU clock restored")
    wait_until(lambda: temp(client, LITTLE_ZONE) < 75000, 30, "little-core-thermal back under 75 C")


def test_fix_freq_script_prints_as_rockchips(good):
    _, client = good
    sh(client, "echo 0 > /sys/devices/system/cpu/cpu4/cpuidle/state1/disable")
    sh(client, "echo ondemand > /sys/devices/system/cpu/cpufreq/policy4/scaling_governor")
    out = sh(client, "sh /usr/bin/fix_freq_rk3576.sh")
    assert out.splitlines() == [
        "NPU available frequencies:", NPU_OPPS,
        "Fix NPU max frequency:", "950000000",  # 1 GHz clamps to the top OPP
        "CPU available frequencies:", LITTLE_KHZ, BIG_KHZ,
        "Fix CPU max frequency:", "2208000", "2304000",
        "GPU available frequencies:", "300000000",
        "300000000 400000000 500000000 600000000 700000000 800000000 900000000",
        "Fix GPU max frequency:", "900000000",
        "DDR available frequencies:", "528000000 1068000000 1560000000 2112000000",
        "Fix DDR max frequency:", "2112000000",
    ]
    disabled = sh(client, "cat /sys/devices/system/cpu/cpu*/cpuidle/state1/disable").split()
    assert disabled == ["1"] * 8
    assert sh(client, f"cat {DEVFREQ}/governor {DEVFREQ}/userspace/set_freq") == "userspace\n1000000000\n"
    rc, out = run(client, "/usr/bin/fix_freq_rk3576.sh")
    assert rc == 127  # #!/system/bin/sh: as on a Debian board, it runs only through sh


# ---------------------------------------------------------------- other images


def test_slow_npu_image_caps_the_opp_table(boards):
    _, client = boards["twin-slow-npu"]
    out = sh(client, f"cd {DEVFREQ} && cat max_freq cur_freq available_frequencies")
    assert out.splitlines() == ["700000000", "700000000", "300000000 400000000 500000000 600000000 700000000"]
    sh(client, f"echo userspace > {DEVFREQ}/governor && echo 1000000000 > {DEVFREQ}/userspace/set_freq")
    assert sh(client, "/usr/libexec/twin/npu freq") == "700000000\n"
    assert sh(client, "cat /proc/rknpu/freq") == "700000000\n"


def test_old_driver_image_reports_096(boards):
    _, client = boards["twin-old-driver"]
    assert sh(client, "cat /sys/kernel/debug/rknpu/version /proc/rknpu/version") == "RKNPU driver: v0.9.6\n" * 2
    assert sh(client, "cat /sys/module/rknpu/version") == "0.9.6\n"
    assert re.search(r"\[drm\] Initialized rknpu 0\.9\.6 \d{8} for 27700000\.npu on minor 1$",
                     sh(client, "dmesg"), re.M)


def test_module_build_is_reproducible(tmp_path, boards):
    """Two builds in different directories give the same bytes (no paths, no timestamps)."""
    from hil.paths import cache_dir
    from hil.twin.aptfetch import PrivateApt

    kver = sh(boards["twin-good"][1], "uname -r").strip()
    apt = PrivateApt(cache_dir() / "apt")
    a = surface.build_module(apt, kver, tmp_path / "one")
    b = surface.build_module(apt, kver, tmp_path / "two" / "deeper")
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    assert b"/tmp" not in a and str(tmp_path).encode() not in a
    guest = sh(boards["twin-good"][1], f"sha256sum /lib/modules/{kver}/extra/rknpu.ko").split()[0]
    assert guest == hashlib.sha256(a).hexdigest()
