"""hil.rockchip.cpustat: /proc/stat snapshots quoted from public repositories, threads and manuals
(each named above it), second snapshots CONSTRUCTED from a real first one by adding known ticks
(so every percentage below is checked by hand), cluster maps from sysfs text, and
``hil parse proc-stat``."""

from __future__ import annotations

import pytest

from hil.rockchip import cpustat as cs
from hil.rockchip.cpustat import ALL, CpuTimes
from selftest.unit.test_rockchip_rknn_benchmark import check_missing_file, hil_parse

# SamiAsfary/myBashToolbox@163bb62:test_perf.sh, the comment at its end: a 4-core machine's
# /proc/stat (ten fields), the '#' of each comment line removed.
FOUR_CORE = """\
cpu  597986 37 148414 99027 1726 0 22046 0 0 0
cpu0 152822 2 34926 26314 364 0 2342 0 0 0
cpu1 146630 17 37992 23707 591 0 8693 0 0 0
cpu2 146750 12 39592 22590 390 0 8604 0 0 0
cpu3 151782 4 35903 26415 379 0 2406 0 0 0
"""

# prometheus/procfs#84 ("wrong handling of offline CPUs"): a machine with CPUs offline, so the
# cpuN lines skip numbers; the lines up to cpu96 of the stored excerpt (cpu97's is cut there).
PROCFS84_GAPS = """\
cpu  8955653 5338 10313729 6891866013 1194210 0 38962 0 0 0
cpu0 138803 9 56167 172504763 16187 0 1296 0 0 0
cpu1 322651 754 427280 171926334 25235 0 1291 0 0 0
cpu8 199865 3 91024 172386730 20071 0 646 0 0 0
cpu9 326453 474 412719 171934902 24410 0 723 0 0 0
cpu16 181309 2 66982 172442461 21437 0 788 0 0 0
cpu17 317509 348 398066 171978692 19749 0 711 0 0 0
cpu24 162611 8 61226 172478776 28065 0 707 0 0 0
cpu25 320518 335 402933 171988746 27002 0 653 0 0 0
cpu32 167024 9 60329 172464237 24645 0 857 0 0 0
cpu33 300664 484 388081 171994667 15890 0 721 0 0 0
cpu40 149963 1 97562 172440250 57631 0 1636 0 0 0
cpu41 349011 123 504120 171857581 42197 0 2032 0 0 0
cpu48 119442 1 74060 172508062 37574 0 2162 0 0 0
cpu49 346802 119 487142 171870884 36441 0 2296 0 0 0
cpu56 133608 3 73781 172488230 30166 0 1639 0 0 0
cpu57 340640 144 493004 171860490 33535 0 2412 0 0 0
cpu64 122117 5 68766 172506171 37048 0 1620 0 0 0
cpu65 346848 142 490790 171861649 44282 0 1396 0 0 0
cpu72 138939 3 67941 172506876 29311 0 1300 0 0 0
cpu73 349307 172 496688 171860930 35681 0 1120 0 0 0
cpu80 139125 92 94140 172450292 54207 0 659 0 0 0
cpu81 295747 183 411438 172009728 31455 0 593 0 0 0
cpu88 96750 62 60035 172573444 25950 0 563 0 0 0
cpu89 319147 509 476759 171926997 34378 0 489 0 0 0
cpu96 101846 22 78433 172521391 21805 0 624 0 0 0
"""

# Red Hat Enterprise Linux 4 Reference Guide, §5.2.27 "/proc/stat"
# (access.redhat.com/documentation/en-us/red_hat_enterprise_linux/4/html/reference_guide/s2-proc-stat):
# two files of a 2.6.9 kernel, seven fields per cpu line, one after the other with a blank line
# between (a one-CPU machine, then an eight-CPU one).
RHEL4_TWO_FILES = """\
cpu  259246 7001 60190 34250993 137517 772 0
cpu0 259246 7001 60190 34250993 137517 772 0
intr 354133732 347209999 2272 0 4 4 0 0 3 1 1249247 0 0 80143 0 422626 5169433
ctxt 12547729
btime 1093631447
processes 130523
procs_running 1
procs_blocked 0
preempt 5651840

cpu  209841 1554 21720 118519346 72939 154 27168
cpu0 42536 798 4841 14790880 14778 124 3117
cpu1 24184 569 3875 14794524 30209 29 3130
cpu2 28616 11 2182 14818198 4020 1 3493
cpu3 35350 6 2942 14811519 3045 0 3659
cpu4 18209 135 2263 14820076 12465 0 3373
cpu5 20795 35 1866 14825701 4508 0 3615
cpu6 21607 0 2201 14827053 2325 0 3334
cpu7 18544 0 1550 14831395 1589 0 3447
intr 15239682 14857833 6 0 6 6 0 5 0 1 0 0 0 29 0 2 0 0 0 0 0 0 0 94982 0 286812
ctxt 4209609
btime 1078711415
processes 21905
procs_running 1
procs_blocked 0
"""

# The kernel's Documentation/filesystems/proc.txt §1.8 example, as quoted in
# micheledurante/xfce4-desklet-cpu-indicator:NOTES.md (its HTML "<br>" line breaks removed), with
# the prompt of the original.
KERNEL_DOC = """\
  > cat /proc/stat
  cpu  2255 34 2290 22625563 6290 127 456 0 0 0
  cpu0 1132 34 1441 11311718 3675 127 438 0 0 0
  cpu1 1123 0 849 11313845 2614 0 18 0 0 0
  intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]
  ctxt 1990473
  btime 1062191376
  processes 2915
  procs_running 1
  procs_blocked 0
  softirq 183433 0 21755 12 39 1137 231 21459 2263
"""


def with_ticks(before: dict, **adds: dict[str, int]) -> dict:
    """CONSTRUCTED second snapshot: ``before`` with ticks added per CPU (``cpu0={"user": 80}``);
    the aggregate line gets the sum, as the kernel's does."""
    out = dict(before)
    for name, fields in adds.items():
        cpu = int(name[3:])
        out[cpu] = before[cpu]._replace(**{f: getattr(before[cpu], f) + v for f, v in fields.items()})
    out[ALL] = CpuTimes(*(before[ALL][i] + sum(out[c][i] - before[c][i] for c in before if c != ALL and c in out)
                          for i in range(len(CpuTimes._fields))))
    return out


FOUR = cs.parse_stat(FOUR_CORE)
# cpu0 90 % busy, cpu1 0 % (its idle ticks partly iowait), cpu2 30 % (softirq counts), cpu3 75 %
FOUR_AFTER = with_ticks(FOUR, cpu0={"user": 80, "system": 10, "idle": 10}, cpu1={"idle": 90, "iowait": 10},
                    cpu2={"user": 25, "softirq": 5, "idle": 70}, cpu3={"user": 50, "system": 25, "idle": 25})


def test_parse_real_four_core():
    assert list(FOUR) == [ALL, 0, 1, 2, 3]
    assert FOUR[0] == CpuTimes(152822, 2, 34926, 26314, 364, 0, 2342, 0, 0, 0)
    assert FOUR[ALL].user == 597986


def test_parse_kernel_doc_ignores_other_lines_and_prompt():
    got = cs.parse_stat(KERNEL_DOC)
    assert list(got) == [ALL, 0, 1] and got[1] == CpuTimes(1123, 0, 849, 11313845, 2614, 0, 18, 0, 0, 0)


def test_parse_rhel4_seven_fields_and_two_files():
    first = cs.parse_stat(RHEL4_TWO_FILES)  # only the first snapshot
    assert list(first) == [ALL, 0] and first[0] == CpuTimes(259246, 7001, 60190, 34250993, 137517, 772, 0)
    snaps = cs.snapshots(RHEL4_TWO_FILES)
    assert [list(s) for s in snaps] == [[ALL, 0], [ALL, 0, 1, 2, 3, 4, 5, 6, 7]]
    assert snaps[1][7] == CpuTimes(18544, 0, 1550, 14831395, 1589, 0, 3447, 0, 0, 0)


def test_parse_offline_gaps():
    got = cs.parse_stat(PROCFS84_GAPS)
    assert [k for k in got if k != ALL] == [0, 1, 8, 9, 16, 17, 24, 25, 32, 33, 40, 41, 48, 49, 56, 57, 64, 65,
                                             72, 73, 80, 81, 88, 89, 96]


def test_utilisation_hand_checked():
    assert cs.utilisation(FOUR, FOUR_AFTER) == {ALL: 48.75, 0: 90.0, 1: 0.0, 2: 30.0, 3: 75.0}


def test_same_snapshot_twice_has_no_ticks():
    assert cs.utilisation(FOUR, FOUR) == {ALL: None, 0: None, 1: None, 2: None, 3: None}


def test_cpu_offline_in_either_snapshot():
    after = {k: v for k, v in FOUR_AFTER.items() if k != 3}
    got = cs.utilisation(FOUR, after)
    assert got[3] is None and got[2] == 30.0
    # the real gapped file against itself plus 50 busy / 50 idle ticks on cpu8; cpu1 goes offline
    gaps = cs.parse_stat(PROCFS84_GAPS)
    later = with_ticks(gaps, cpu8={"user": 50, "idle": 50})
    del later[1]
    util = cs.utilisation(gaps, later)
    assert util[8] == 50.0 and util[1] is None and util[0] is None  # cpu0: no ticks between
    assert list(util)[:4] == [ALL, 0, 1, 8]


def test_iowait_moving_into_idle_is_no_reset():
    after = dict(FOUR_AFTER)
    after[1] = FOUR[1]._replace(idle=FOUR[1].idle + 105, iowait=FOUR[1].iowait - 5)
    assert cs.utilisation(FOUR, after)[1] == 0.0


def test_reset_counter_gives_none():
    after = dict(FOUR_AFTER)
    after[1] = FOUR[1]._replace(idle=5, user=FOUR[1].user + 10)  # idle restarted after a hotplug
    assert cs.utilisation(FOUR, after)[1] is None


@pytest.mark.parametrize("size", [1 << 32, 1 << 64])
def test_counter_wrap(size):
    before = {0: CpuTimes(user=size - 10, idle=1000)}
    after = {0: CpuTimes(user=90, idle=1100)}
    assert cs.utilisation(before, after) == {0: 50.0}


def test_guest_time_is_not_counted_twice():
    after = dict(FOUR)
    after[0] = FOUR[0]._replace(user=FOUR[0].user + 40, guest=FOUR[0].guest + 40, idle=FOUR[0].idle + 60)
    assert cs.utilisation(FOUR, after)[0] == 40.0


def test_cluster_utilisation():
    pairs = {"a": [0, 1], "b": [2, 3]}
    assert cs.cluster_utilisation(FOUR, FOUR_AFTER, pairs) == {"a": 45.0, "b": 52.5}
    without3 = {k: v for k, v in FOUR_AFTER.items() if k != 3}
    assert cs.cluster_utilisation(FOUR, without3, pairs) == {"a": 45.0, "b": 30.0}
    # RK3576's map on a 4-core file: the A72 cluster has no core here
    assert cs.cluster_utilisation(FOUR, FOUR_AFTER) == {"policy0": 48.75, "policy4": None}


def test_clusters_from_related_cpus():
    # cpufreq_show_cpus() prints "%u " per CPU with the last space turned into a newline
    related = {n: "0 1 2 3\n" for n in range(4)} | {n: "4 5 6 7\n" for n in range(4, 8)}
    assert cs.clusters(related) == cs.RK3576_CLUSTERS == {"policy0": [0, 1, 2, 3], "policy4": [4, 5, 6, 7]}
    assert cs.clusters({0: "0 1 2 3", 4: "4 5", 6: "6 7"}) == {"policy0": [0, 1, 2, 3], "policy4": [4, 5],
                                                                 "policy6": [6, 7]}  # RK3588's three policies


def test_clusters_by_capacity():
    # rockchip.md §10: RK3576 capacity 485 (A53) and 1024 (A72)
    caps = {n: "485\n" for n in range(4)} | {n: "1024\n" for n in range(4, 8)}
    assert cs.clusters_by_capacity(caps) == {"capacity485": [0, 1, 2, 3], "capacity1024": [4, 5, 6, 7]}


def test_cpu_list_forms():
    # sysstat/sysstat#7: /sys/devices/system/cpu/online on a machine with CPUs always offline
    assert cs.cpu_list("0-1,4-5,8-9,12-13\n") == [0, 1, 4, 5, 8, 9, 12, 13]
    assert cs.cpu_list("4 5 6 7\n") == [4, 5, 6, 7] and cs.cpu_list("\n") == []
    with pytest.raises(ValueError):
        cs.cpu_list("cpu0")


def _stat_text(snap: dict) -> str:
    return "".join(f"cpu{'' if k == ALL else k} {' '.join(map(str, v))}\n" for k, v in snap.items())


def test_report_and_cli(tmp_path, capsys):
    text = FOUR_CORE + "\nroot@rk3576:~# sleep 10; cat /proc/stat\n" + _stat_text(FOUR_AFTER)
    rep = cs.report(text)
    assert rep == {"snapshots": 2, "cores": {"all": 48.75, "0": 90.0, "1": 0.0, "2": 30.0, "3": 75.0},
                   "clusters": {"policy0": 48.75, "policy4": None}, "offline": []}
    out, err = hil_parse(capsys, "proc-stat", tmp_path / "stat.log", text.replace("\n", "\r\n"))
    assert out == rep and err == ""
    out, err = hil_parse(capsys, "proc-stat", tmp_path / "one.log", FOUR_CORE)
    assert out is None and "fewer than two /proc/stat snapshots" in err


def test_cli_missing_file(tmp_path, capsys):
    check_missing_file(tmp_path, capsys, "proc-stat")


# --- the NPU sampler's CPU field, and clusters /proc/stat shows only part of ------------------


def sampler_field(text: str) -> str:
    """The NPU sampler's CPU field made of a real file: its ``cpuN`` lines joined with ';'
    (selftest/unit/test_npu_driver.py checks that the board-side loop prints exactly this)."""
    return "".join(f"{line.strip()};" for line in text.splitlines() if line.strip()[:3] == "cpu"
                   and line.strip()[3:4].isdigit())


def test_parse_joined_reads_the_sampler_field_of_a_real_file():
    eight = RHEL4_TWO_FILES.split("\n\n")[1]
    field = sampler_field(eight)
    assert field.startswith("cpu0 42536 798 4841 14790880 14778 124 3117;cpu1 ") and field.endswith("3447;")
    got = cs.parse_joined(field)
    assert list(got) == list(range(8)) and got == {k: v for k, v in cs.parse_stat(eight).items() if k != ALL}
    gaps = cs.parse_joined(sampler_field(PROCFS84_GAPS))
    assert gaps[96] == CpuTimes(101846, 22, 78433, 172521391, 21805, 0, 624, 0, 0, 0) and 2 not in gaps
    assert cs.parse_joined("") == {}, "/proc/stat unreadable: an empty field"
    with_aggregate = "cpu  2255 34 2290 22625563 6290 127 456 0 0 0;cpu0 1132 34 1441 11311718 3675 127 438 0 0 0;"
    assert cs.parse_joined(with_aggregate) == {0: CpuTimes(1132, 34, 1441, 11311718, 3675, 127, 438, 0, 0, 0)}


def test_cpu_ranges_as_sysfs_writes_them():
    assert cs.cpu_ranges([0, 1, 2, 3]) == "0-3" and cs.cpu_ranges([3, 0, 1, 6]) == "0-1,3,6"
    # prometheus/procfs#84's online CPUs: pairs with gaps
    assert cs.cpu_ranges(k for k in cs.parse_stat(PROCFS84_GAPS) if k != ALL)[:23] == "0-1,8-9,16-17,24-25,32-"
    assert cs.cpu_ranges([]) == ""


def test_cluster_label():
    assert cs.cluster_label("policy4") == "policy4 (Cortex-A72)"
    assert cs.cluster_label("policy0", [0, 1, 2, 3]) == "policy0 (Cortex-A53, CPUs 0-3)"
    assert cs.cluster_label("policy6", [6, 7]) == "policy6 (CPUs 6-7)"
    assert cs.cluster_label("capacity485") == "capacity485"


def test_unshown_names_clusters_proc_stat_does_not_show():
    # the kernel doc's two-CPU /proc/stat under RK3576's cpufreq policies: what the twin booted
    # with two CPUs shows (its faked policies name CPUs 0-3 and 4-7)
    two = [k for k in cs.parse_stat(KERNEL_DOC) if k != ALL]
    notes = cs.unshown(cs.RK3576_CLUSTERS, two)
    assert notes == {
        "policy0": "policy0 (Cortex-A53, CPUs 0-3): cpu2-3 not in /proc/stat (offline, or not present on this "
                   "board); its figure is over cpu0-1 only",
        "policy4": "policy4 (Cortex-A72, CPUs 4-7): none of its CPUs is in /proc/stat, which shows cpu0-1: "
                   "offline, or not present on this board"}
    eight = [k for k in cs.snapshots(RHEL4_TWO_FILES)[1] if k != ALL]
    assert cs.unshown(cs.RK3576_CLUSTERS, eight) == {}
    assert cs.unshown(cs.RK3576_CLUSTERS, [])["policy0"].endswith("which shows no CPU: offline, or not present "
                                                                   "on this board")
