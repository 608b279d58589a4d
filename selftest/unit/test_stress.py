"""hil.rockchip.stress: stressapptest and memtester parsers against real output quoted from public
repositories and threads (each named above it), against captures built from those real ones or
from the tools' own printf sequences (marked CONSTRUCTED, with what was changed), and
``hil parse stress``."""

from __future__ import annotations

from hil.rockchip import stress
from selftest.unit.test_rockchip_rknn_benchmark import NO_CAPTURE, check_missing_file, hil_parse, hil_parse_stdin

# --- stressapptest: real captures ------------------------------------------------------------------------

# osism/documentation:source/test/hardware.rst, "stressapptest" (Ubuntu's 1.0.6 package, x86, no
# timestamps); the reStructuredText code block's three-space indent kept.
OSISM_PASS = """\
   # stressapptest -s 30
   Log: Commandline - stressapptest -s 30
   Stats: SAT revision 1.0.6_autoconf, 64 bit binary
   Log: buildd @ lgw01-amd64-022 on Thu Apr  5 10:28:35 UTC 2018 from open source release
   Log: 1 nodes, 48 cpus.
   Log: Defaulting to 48 copy threads
   Log: Total 257895 MB. Free 254409 MB. Hugepages 0 MB. Targeting 244809 MB (94%)
   Log: Prefer plain malloc memory allocation.
   Log: Using memaligned allocation at 0x7f389f6ff000.
   Stats: Starting SAT, 244809M, 30 seconds
   Log: Region mask: 0x1
   Log: Seconds remaining: 20
   Log: Seconds remaining: 10
   Stats: Found 0 hardware incidents
   Stats: Completed: 1135370.00M in 30.03s 37813.12MB/s, with 0 hardware incidents, 0 errors
   Stats: Memory Copy: 1135370.00M at 37825.20MB/s
   Stats: File Copy: 0.00M at 0.00MB/s
   Stats: Net Copy: 0.00M at 0.00MB/s
   Stats: Data Check: 0.00M at 0.00MB/s
   Stats: Invert Data: 0.00M at 0.00MB/s
   Stats: Disk: 0.00M at 0.00MB/s

   Status: PASS - please verify no corrected errors
"""

# microsoft/VirtualClient@02e9c46:src/VirtualClient/TestResources/Results_StressAppTest.txt, whole
# (timestamped lines, the blank ones reduced to the stamp and a space).
VIRTUALCLIENT_PASS = """\
2022/12/28-08:15:00(UTC) Log: Commandline - ./stressapptest -s 60 -l logfile_v8_pass.txt
2022/12/28-08:15:00(UTC) Stats: SAT revision 1.0.0_autoconf, 64 bit binary
2022/12/28-08:15:00(UTC) Log: username @ system-name on Fri Jan 01 00:00:00 UTC 2000 from open source release
2022/12/28-08:15:00(UTC) Log: 1 nodes, 16 cpus.
2022/12/28-08:15:00(UTC) Log: Defaulting to 16 copy threads
2022/12/28-08:15:00(UTC) Log: Total 64318 MB. Free 62116 MB. Hugepages 0 MB. Targeting 60910 MB (94%)
2022/12/28-08:15:00(UTC) Log: Prefer plain malloc memory allocation.
2022/12/28-08:15:00(UTC) Log: Using mmap() allocation at 0x0000000.
2022/12/28-08:15:00(UTC) Stats: Starting SAT, 60910M, 60 seconds
2022/12/28-08:15:03(UTC) Log: Region mask: 0x1
2022/12/28-08:15:13(UTC) Log: Seconds remaining: 50
2022/12/28-08:15:23(UTC) Log: Seconds remaining: 40
2022/12/28-08:15:33(UTC) Log: Seconds remaining: 30
2022/12/28-08:15:43(UTC) Log: Seconds remaining: 20
2022/12/28-08:15:53(UTC) Log: Seconds remaining: 10
2022/12/28-08:16:04(UTC) Stats: Found 0 hardware incidents
2022/12/28-08:16:04(UTC) Stats: Completed: 4582288.00M in 60.00s 76365.33MB/s, with 0 hardware incidents, 0 errors
2022/12/28-08:16:04(UTC) Stats: Memory Copy: 4582288.00M at 76369.52MB/s
2022/12/28-08:16:04(UTC) Stats: File Copy: 0.00M at 0.00MB/s
2022/12/28-08:16:04(UTC) Stats: Net Copy: 0.00M at 0.00MB/s
2022/12/28-08:16:04(UTC) Stats: Data Check: 0.00M at 0.00MB/s
2022/12/28-08:16:04(UTC) Stats: Invert Data: 0.00M at 0.00MB/s
2022/12/28-08:16:04(UTC) Stats: Disk: 0.00M at 0.00MB/s
2022/12/28-08:16:04(UTC) 
2022/12/28-08:16:04(UTC) Status: PASS - please verify no corrected errors
2022/12/28-08:16:04(UTC) 
"""

# stressapptest/stressapptest#127 (2025-08-31): an aarch64 board ("stressapptest_arm", 1.0.9, -W);
# the description's first log up to the last whole line of the excerpt stored (the reporter's
# leading "_" of markdown italics kept).
ISSUE127_ARM_CUT = """\
_2025/03/09-12:42:48(UTC) Log: Commandline - ./stressapptest_arm -M 3000 -s 60 -m 8 -c 16 -f file.1 -f \
file.2 --printsec 5 -i 8 -W
2025/03/09-12:42:48(UTC) Stats: SAT revision 1.0.9_autoconf, 64 bit binary
2025/03/09-12:42:48(UTC) Log: adieckman @ pen-arm1 on Fri Oct 22 10:18:18 PDT 2021 from open source release
2025/03/09-12:42:48(UTC) Log: 1 nodes, 4 cpus.
2025/03/09-12:42:48(UTC) Log: Prefer plain malloc memory allocation.
2025/03/09-12:42:48(UTC) Log: Using mmap() allocation at 0xfffee0800000.
2025/03/09-12:42:48(UTC) Stats: Starting SAT, 3000M, 60 seconds
2025/03/09-12:42:50(UTC) Log: region number 65 exceeds region count 1
2025/03/09-12:42:50(UTC) Log: Region mask: 0x1
2025/03/09-12:42:55(UTC) Log: Seconds remaining: 55
2025/03/09-12:43:00(UTC) Log: Seconds remaining: 50
2025/03/09-12:43:05(UTC) Log: Seconds remaining: 45
"""

# stressapptest/stressapptest#117 (2024-07-02), the description's code block: a full run that
# ends in procedural errors ("..." is the reporter's).
ISSUE117_PROCEDURAL = """\
Process Error: copy_thread failed to pop pages, bailing
...
Process Error: Thread 16 failed with status 0 at 25713.01 seconds
Stats: Found 0 hardware incidents
Stats: Completed: 5160194.00M in 39999.55s 129.01MB/s, with 0 hardware incidents, 0 errors
Stats: Memory Copy: 5160194.00M at 130.16MB/s
Stats: File Copy: 0.00M at 0.00MB/s
Stats: Net Copy: 0.00M at 0.00MB/s
Stats: Data Check: 0.00M at 0.00MB/s
Stats: Invert Data: 0.00M at 0.00MB/s
Stats: Disk: 0.00M at 0.00MB/s

Status: FAIL - test encountered procedural errors

Process Error: Fatal issue encountered. See above logs for details.
"""

# stressapptest/stressapptest#1 (from code.google.com, 2009): Initialize() fails, so no run and
# no Completed line, and PrintResults() still says FAIL.
ISSUE1_INIT_FAIL = """\
alan@dev1:~$ stressapptest
Log: Commandline - stressapptest
Stats: SAT revision 1.0.0_autoconf, 64 bit binary
Log: root @ dev1 on Thu Oct 15 17:52:53 PDT 2009 from open source release
Log: 1 nodes, 8 cpus.
Log: Defaulting to 8 copy threads
Log: Total 7894 MB. Free 7441 MB. Hugepages 0 MB. Targeting 7308 MB (92%)
Process Error: Unsupported system, no error reporting available
Log: Command line option '-A' bypasses this error.
Process Error: Sat::Initialize() failed

Status: FAIL - test encountered procedural errors

Process Error: Fatal issue encountered. See above logs for details.
alan@dev1:~$
"""

# stressapptest/stressapptest#71 (2019-12-10, "DDR stress test failed"): an aarch64 board's
# miscompares (user-space addresses 0xffff...), the lines stored in the excerpt.
ISSUE71_ARM_MISCOMPARES = """\
2019/09/24-17:39:39(UTC) Log: CrcCopyPage CRC mismatch 000000ff7fffff01 000000ff7fffff01 000101eebffeffa0 \
000101eebffeffa0 != 000000ffffffff01 000000ffffffff01 00010267fffeffa0 00010267fffeffa0, but no miscompares \
found. Retrying with fresh data.
2019/09/24-17:39:39(UTC) Report Error: miscompare : DIMM Unknown : 1 : 882s
2019/09/24-17:39:39(UTC) Hardware Error: miscompare on CPU 1(0x2) at 0xffff83bf0860(0x711f0863:DIMM \
Unknown): read:0x0000000000000000, reread:0x0000000000000000 expected:0x2000000020000000
2019/09/24-17:39:39(UTC) Report Error: miscompare : DIMM Unknown : 1 : 882s
2019/09/24-17:39:39(UTC) Hardware Error: miscompare on CPU 1(0x2) at 0xffff83bf0868(0x711f086b:DIMM \
Unknown): read:0x0000000000000000, reread:0x0000000000000000 expected:0x2000000020000000
2019/09/24-17:39:39(UTC) Report Error: miscompare : DIMM Unknown : 1 : 882s
2019/09/24-17:39:39(UTC) Hardware Error: miscompare on CPU 1(0x2) at 0xffff83bf0870(0x711f0873:DIMM \
Unknown): read:0x0000000000000000, reread:0x0000000000000000 expected:0x2000000020000000
"""

# stressapptest/stressapptest#53 (2017-11-01): the FAIL line pasted first, then "Page Error" pairs.
ISSUE53_PAGE_ERROR = """\
2017/11/01-07:14:02(PDT) Status: FAIL - test discovered HW problems
2017/11/01-05:32:30(PDT) Report Error: miscompare : DIMM Unknown : 1 : 23136s
2017/11/01-05:32:30(PDT) Page Error: miscompare on CPU 21(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF) at \
0x7f887275d000(0x442715d000:DIMM Unknown): read:0xaaaaaaa8aaaaaaa8, reread:0xaaaaaaa8aaaaaaa8 \
expected:0xffffffffffffffff
2017/11/01-05:32:30(PDT) Report Error: miscompare : DIMM Unknown : 1 : 23136s
2017/11/01-05:32:30(PDT) Page Error: miscompare on CPU 21(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF) at \
0x7f887275d008(0x442715d008:DIMM Unknown): read:0xaaaaaaa8aaaaaaa8, reread:0xaaaaaaa8aaaaaaa8 \
expected:0xffffffffffffffff
"""

# fedevel.com/blog/arm-ddr3-memory-testing: an i.MX6 (ARM) board with uncalibrated DDR3, the
# first two failures quoted there.
FEDEVEL_IMX6 = """\
Log: Seconds remaining: 4350
Report Error: miscompare : DIMM Unknown : 1 : 1658s
Hardware Error: miscompare on CPU 0(0xF) at 0x2be72978(0x4ca1997a:DIMM Unknown): read:0xff7fffffffffffff, \
reread:0xff7fffffffffffff expected:0xff7fffffff7fffff

Log: Seconds remaining: 4840
Report Error: miscompare : DIMM Unknown : 1 : 1169s
Hardware Error: miscompare on CPU 0(0xF) at 0x2bd89a78(0x4e3c7a7a:DIMM Unknown): read:0xff7fffffffffffff, \
reread:0xff7fffffffffffff expected:0xff7fffffff7fffff
"""

# Debian bookworm's stressapptest 1.0.6-2.2 (amd64 package, unpacked with dpkg -x and run in this
# project's session on 2 CPUs): a short run, then one stopped with SIGINT (timeout -s INT 7)
# after 7 of 30 s. Debian's build prints no timestamps; the stopped run still says PASS.
DEBIAN_SAT_PASS = """\
Log: Commandline - root/usr/bin/stressapptest -s 2 -M 8 -m 1
Stats: SAT revision 1.0.6_autoconf, 64 bit binary
Log: reproducible @ reproducible on Thu Nov 17 22:06:40 UTC 2022 from open source release
Log: 1 nodes, 2 cpus.
Log: Prefer plain malloc memory allocation.
Log: Using memaligned allocation at 0x7f2bc1a1c000.
Stats: Starting SAT, 8M, 2 seconds
Log: Region mask: 0x1
Stats: Found 0 hardware incidents
Stats: Completed: 129584.00M in 5.00s 25913.45MB/s, with 0 hardware incidents, 0 errors
Stats: Memory Copy: 129584.00M at 25916.08MB/s
Stats: File Copy: 0.00M at 0.00MB/s
Stats: Net Copy: 0.00M at 0.00MB/s
Stats: Data Check: 0.00M at 0.00MB/s
Stats: Invert Data: 0.00M at 0.00MB/s
Stats: Disk: 0.00M at 0.00MB/s

Status: PASS - please verify no corrected errors

"""
DEBIAN_SAT_SIGINT = """\
Log: Commandline - root/usr/bin/stressapptest -s 30 -M 8 -m 1
Stats: SAT revision 1.0.6_autoconf, 64 bit binary
Log: reproducible @ reproducible on Thu Nov 17 22:06:40 UTC 2022 from open source release
Log: 1 nodes, 2 cpus.
Log: Prefer plain malloc memory allocation.
Log: Using memaligned allocation at 0x7f3416a1c000.
Stats: Starting SAT, 8M, 30 seconds
Log: Region mask: 0x1
Log: User exiting early (23 seconds remaining)
Stats: Found 0 hardware incidents
Stats: Completed: 166864.00M in 7.00s 23830.81MB/s, with 0 hardware incidents, 0 errors
Stats: Memory Copy: 166864.00M at 23845.50MB/s
Stats: File Copy: 0.00M at 0.00MB/s
Stats: Net Copy: 0.00M at 0.00MB/s
Stats: Data Check: 0.00M at 0.00MB/s
Stats: Invert Data: 0.00M at 0.00MB/s
Stats: Disk: 0.00M at 0.00MB/s

Status: PASS - please verify no corrected errors

"""

# Debian bookworm's memtester 4.6.0-1 (amd64), run here as MEMTESTER_TEST_MASK=0x1 memtester 1M 1
# with stdout a pipe: the progress words, backspaces and spinner are written all the same.
DEBIAN_MEMTESTER_PIPE = (
    "memtester version 4.6.0 (64-bit)\n"
    "Copyright (C) 2001-2020 Charles Cazabon.\n"
    "Licensed under the GNU General Public License version 2 (only).\n"
    "\n"
    "pagesize is 4096\n"
    "pagesizemask is 0xfffffffffffff000\n"
    "using testmask 0x1\n"
    "want 1MB (1048576 bytes)\n"
    "got  1MB (1048576 bytes), trying mlock ...locked.\n"
    "Loop 1/1:\n"
    "  Stuck Address       :            \b\b\b\b\b\b\b\b\b\b\bsetting   0\b\b\b\b\b\b\b\b\b\b\btesting   "
    "0\b\b\b\b\b\b\b\b\b\b\bsetting   1\b\b\b\b\b\b\b\b\b\b\btesting   1\b\b\b\b\b\b\b\b\b\b\bsetting   2"
    "\b\b\b\b\b\b\b\b\b\b\btesting   2\b\b\b\b\b\b\b\b\b\b\bsetting   3\b\b\b\b\b\b\b\b\b\b\btesting   3"
    "\b\b\b\b\b\b\b\b\b\b\bsetting   4\b\b\b\b\b\b\b\b\b\b\btesting   4\b\b\b\b\b\b\b\b\b\b\bsetting   5"
    "\b\b\b\b\b\b\b\b\b\b\btesting   5\b\b\b\b\b\b\b\b\b\b\bsetting   6\b\b\b\b\b\b\b\b\b\b\btesting   6"
    "\b\b\b\b\b\b\b\b\b\b\bsetting   7\b\b\b\b\b\b\b\b\b\b\btesting   7\b\b\b\b\b\b\b\b\b\b\bsetting   8"
    "\b\b\b\b\b\b\b\b\b\b\btesting   8\b\b\b\b\b\b\b\b\b\b\bsetting   9\b\b\b\b\b\b\b\b\b\b\btesting   9"
    "\b\b\b\b\b\b\b\b\b\b\bsetting  10\b\b\b\b\b\b\b\b\b\b\btesting  10\b\b\b\b\b\b\b\b\b\b\bsetting  11"
    "\b\b\b\b\b\b\b\b\b\b\btesting  11\b\b\b\b\b\b\b\b\b\b\bsetting  12\b\b\b\b\b\b\b\b\b\b\btesting  12"
    "\b\b\b\b\b\b\b\b\b\b\bsetting  13\b\b\b\b\b\b\b\b\b\b\btesting  13\b\b\b\b\b\b\b\b\b\b\bsetting  14"
    "\b\b\b\b\b\b\b\b\b\b\btesting  14\b\b\b\b\b\b\b\b\b\b\bsetting  15\b\b\b\b\b\b\b\b\b\b\btesting  15"
    "\b\b\b\b\b\b\b\b\b\b\b           \b\b\b\b\b\b\b\b\b\b\bok\n"
    "  Random Value        :  \b\\\b|\b/\b-\b\\\b|\b/\b-\b\\\b|\b/\b-\b\\\b|\b/\b-\b\\\b|\b/\b-\b\\\b|\b/"
    "\b-\b\\\b|\b/\b \bok\n"
    "\n"
    "Done.\n"
)


def test_osism_pass():
    out = stress.parse_stressapptest(OSISM_PASS)
    assert list(out) == list(stress.STRESSAPPTEST_KEYS)
    assert out["status"] == "PASS" and out["status_reason"] == "please verify no corrected errors"
    assert out["version"] == "1.0.6_autoconf" and out["command"] == "stressapptest -s 30"
    assert (out["target_mb"], out["target_seconds"]) == (244809, 30)
    assert (out["completed_mb"], out["seconds"], out["mb_per_s"]) == (1135370.0, 30.03, 37813.12)
    assert (out["hardware_incidents"], out["errors"]) == (0, 0)
    assert out["throughput"]["Memory Copy"] == {"mb": 1135370.0, "mb_per_s": 37825.2}
    assert set(out["throughput"]) == {"Memory Copy", "File Copy", "Net Copy", "Data Check", "Invert Data", "Disk"}
    assert out["error_lines"] == [] and out["error_line_count"] == 0
    assert out["complete"] is True and out["cut_short"] is None and out["exited_early"] is None


def test_virtualclient_timestamped_pass():
    out = stress.parse_stressapptest(VIRTUALCLIENT_PASS)
    assert out["status"] == "PASS" and out["complete"]
    assert out["version"] == "1.0.0_autoconf"
    assert out["command"] == "./stressapptest -s 60 -l logfile_v8_pass.txt"
    assert (out["completed_mb"], out["seconds"], out["mb_per_s"]) == (4582288.0, 60.0, 76365.33)


def test_issue127_arm_capture_cut_short():
    out = stress.parse_stressapptest(ISSUE127_ARM_CUT)
    assert out["version"] == "1.0.9_autoconf" and out["target_seconds"] == 60 and out["target_mb"] == 3000
    assert out["status"] is None and out["complete"] is False
    assert out["cut_short"] == ("ends with 45 of 60 seconds remaining, before 'Stats: Found ... hardware "
                                "incidents'")
    assert out["completed_mb"] is None and out["error_lines"] == []


def test_issue117_procedural_fail_after_full_run():
    out = stress.parse_stressapptest(ISSUE117_PROCEDURAL)
    assert out["status"] == "FAIL" and out["status_reason"] == "test encountered procedural errors"
    assert out["hardware_incidents"] == 0 and out["errors"] == 0
    assert out["mb_per_s"] == 129.01 and out["seconds"] == 39999.55
    assert out["error_lines"] == [
        "Process Error: copy_thread failed to pop pages, bailing",
        "Process Error: Thread 16 failed with status 0 at 25713.01 seconds",
        "Process Error: Fatal issue encountered. See above logs for details.",
    ]
    assert out["complete"] and out["cut_short"] is None


def test_issue1_init_failure_has_a_verdict_but_no_numbers():
    out = stress.parse_stressapptest(ISSUE1_INIT_FAIL)
    assert out["status"] == "FAIL" and out["complete"]
    assert out["completed_mb"] is None and out["hardware_incidents"] is None
    assert out["error_lines"][1] == "Process Error: Sat::Initialize() failed"
    assert out["error_line_count"] == 3


def test_issue71_arm_miscompares_keep_the_fault_lines():
    out = stress.parse_stressapptest(ISSUE71_ARM_MISCOMPARES)
    assert out["error_line_count"] == 6
    assert out["error_lines"][0] == "Report Error: miscompare : DIMM Unknown : 1 : 882s"
    assert out["error_lines"][1].startswith("Hardware Error: miscompare on CPU 1(0x2) at 0xffff83bf0860")
    # the CRC "Log:" line is no fault line; nothing says how the run ended
    assert out["status"] is None and out["complete"] is False
    assert out["cut_short"] == "ends before 'Stats: Starting SAT'"


def test_issue53_page_errors_and_fail():
    out = stress.parse_stressapptest(ISSUE53_PAGE_ERROR)
    assert out["status"] == "FAIL" and out["status_reason"] == "test discovered HW problems"
    assert [line.split(":")[0] for line in out["error_lines"]] == ["Report Error", "Page Error"] * 2


def test_fedevel_imx6_lines():
    out = stress.parse_stressapptest(FEDEVEL_IMX6)
    assert out["error_line_count"] == 4 and out["status"] is None
    assert out["cut_short"] == "ends with 4840 seconds remaining, before 'Stats: Found ... hardware incidents'"


def test_error_lines_are_capped_but_counted():
    # CONSTRUCTED: #71's Report/Hardware pair repeated 30 times, as a bad DIMM prints them
    text = ISSUE71_ARM_MISCOMPARES.split("\n", 1)[1] * 10
    out = stress.parse_stressapptest(text)
    assert len(out["error_lines"]) == stress.MAX_ERROR_LINES and out["error_line_count"] == 60


def test_debian_build_pass_and_sigint():
    out = stress.parse_stressapptest(DEBIAN_SAT_PASS)
    assert out["status"] == "PASS" and out["complete"] and out["version"] == "1.0.6_autoconf"
    assert (out["target_mb"], out["target_seconds"], out["seconds"]) == (8, 2, 5.0)
    stopped = stress.parse_stressapptest(DEBIAN_SAT_SIGINT)
    assert stopped["status"] == "PASS" and stopped["exited_early"] == "User exiting early (23 seconds remaining)"
    assert stopped["complete"] is False
    assert stopped["cut_short"] == ("the run stopped after 7 s of 30 ('User exiting early (23 seconds "
                                    "remaining)'); its verdict covers that part only")


def test_killed():
    # CONSTRUCTED: VirtualClient's run killed by the OOM killer after its 40 s line
    lines = VIRTUALCLIENT_PASS.splitlines(keepends=True)
    killed = stress.parse_stressapptest("".join(lines[:12]) + "Killed\n")
    assert killed["error_lines"] == ["Killed"] and killed["cut_short"] is None and not killed["complete"]
    # the shell's words alone are nobody's: no stressapptest (or memtester) output around them
    assert stress.parse_stressapptest("Killed\n")["error_lines"] == []
    assert stress.parse_memtester("Killed\n")["errors"] == []


def test_two_runs_are_split():
    runs = stress.stressapptest_runs(OSISM_PASS + VIRTUALCLIENT_PASS)
    assert [r["version"] for r in runs] == ["1.0.6_autoconf", "1.0.0_autoconf"]
    assert stress.parse_stressapptest(OSISM_PASS + VIRTUALCLIENT_PASS)["version"] == "1.0.6_autoconf"


def test_nothing_recognised():
    out = stress.parse_stressapptest(NO_CAPTURE)
    assert out["cut_short"] == "holds no stressapptest output" and out["status"] is None


# --- memtester: real captures ----------------------------------------------------------------------------

# ForlinxEmbedded/ForlinxEmbedded.github.io@b07f528:platform/rockchip/ok3576-c/
# OK3576-C_Linux6_1_84_User_Manual.md, §4.4 "DDR Test": an RK3576 board (Buildroot, kernel 6.1.75),
# Rockchip's memtester build; its result block, no "Done.".
OK3576_ROCKCHIP_PASS = """\
root@ok3576-buildroot:/# memtester 100M 1
memtester version 4.5.1_20231020 (32-bit)
Copyright (C) 2001-2020 Charles Cazabon.
Licensed under the GNU General Public License version 2 (only).

pagesize is 4096
pagesizemask is 0xfffffffffffff000
want 100MB (104857600 bytes)
got  100MB (104857600 bytes), trying mlock ...locked.
testing from phyaddress:0x4fc3c000
get chip name: (null)
get ddr bw: (null)
io bw x32
Loop 1/1:
  Stuck Address       : ok
  Random Value        : ok
  Compare XOR         : ok
  Compare SUB         : ok
  Compare MUL         : ok
  Compare DIV         : ok
  Compare OR          : ok
  Compare AND         : ok
  Sequential Increment: ok
  Solid Bits          : ok
  Block Sequential    : ok
  Checkerboard        : ok
  Bit Spread          : ok
  Bit Flip            : ok
  Walking Ones        : ok
  Walking Zeroes      : ok
  8-bit Writes        : ok
  16-bit Writes       : ok


*************************************************************
memtester result:
Log: had found 0 failures.

Status: PASS.

*************************************************************
"""

# Justin-Garey/Guides:guides/memtester.md, "Testing Output": upstream 4.5.1 (64-bit), the trailing
# spaces after "ok" the tty's progress left behind, "Done." at the end.
GUIDES_451_PASS = """\
memtester version 4.5.1 (64-bit)
Copyright (C) 2001-2020 Charles Cazabon.
Licensed under the GNU General Public License version 2 (only).

pagesize is 4096
pagesizemask is 0xfffffffffffff000
want 1024MB (1073741824 bytes)
got  1024MB (1073741824 bytes), trying mlock ...locked.
Loop 1/1:
  Stuck Address       : ok         
  Random Value        : ok
  Compare XOR         : ok
  Compare SUB         : ok
  Compare MUL         : ok
  Compare DIV         : ok
  Compare OR          : ok
  Compare AND         : ok
  Sequential Increment: ok
  Solid Bits          : ok         
  Block Sequential    : ok         
  Checkerboard        : ok         
  Bit Spread          : ok         
  Bit Flip            : ok         
  Walking Ones        : ok         
  Walking Zeroes      : ok         
  8-bit Writes        : ok
  16-bit Writes       : ok

Done.
"""

# ssvb/lima-memtester@19ae252:readme.txt: memtester 4.3.0 on an ARM (Allwinner) board, stderr merged:
# the progress "testing  23" and the first FAILURE share the label's line; the capture ends there.
LIMA_ARM_FAIL = """\
memtester version 4.3.0 (32-bit)
Copyright (C) 2001-2012 Charles Cazabon.
Licensed under the GNU General Public License version 2 (only).

pagesize is 4096
pagesizemask is 0xfffff000
want 1400MB (1468006400 bytes)
got  1400MB (1468006400 bytes), trying mlock ...locked.
Loop 1:
  Stuck Address       : ok
  Random Value        : ok
  Compare XOR         : ok
  Compare SUB         : ok
  Compare MUL         : ok
  Compare DIV         : ok
  Compare OR          : ok
  Compare AND         : ok
  Sequential Increment: ok
  Solid Bits          : testing  23FAILURE: 0xffffffff != 0xffffff00 at offset 0x099e03bc.
FAILURE: 0x00000000 != 0x000000ff at offset 0x099e03c0.
FAILURE: 0xffffffff != 0xffffff00 at offset 0x099e03c4.
FAILURE: 0x00000000 != 0x000000ff at offset 0x099e03c8.
"""

# friendlyarm/linux-3.4.y#3 (2017-10-08, "Bump to linux-4.x.y"): an ARM board failing everywhere.
# "Compare OR" and "Sequential Increment" print no ok and the next label follows on their line;
# the FAILURE after "Compare AND : ok" is Compare OR's, printed late. The leading blank line and
# "oop 2/5:" are the paste's; the last line, cut in the stored excerpt, is left out.
FRIENDLYARM_FAILURES = """\

oop 2/5:
  Stuck Address       : testing   1FAILURE: possible bad address line at offset 0x19eac7e8.
Skipping to next test...
  Random Value        : FAILURE: 0x5bbf7e9dffefde96 != 0x5bbf7e9dffefdf96 at offset 0x09eacfe0.
FAILURE: 0xa1e8b9fbc9491706 != 0xa1e8b9fbc9491606 at offset 0x09eacfe0.
  Compare XOR         : FAILURE: 0x65f17a93cc4132d2 != 0x65f17a93cc4130d2 at offset 0x09eacfe0.
  Compare SUB         : FAILURE: 0x93afc06758ce549e != 0x382a9c6f5a60669e at offset 0x09eacfe0.
  Compare MUL         : FAILURE: 0x00000001 != 0x00000000 at offset 0x09eacfe0.
  Compare DIV         : FAILURE: 0xdeca5531b8f76e79 != 0xdeca5531b8f76e78 at offset 0x09eacfe0.
  Compare OR          :   Compare AND         : ok
FAILURE: 0x9fa53d347fb77e1d != 0x9fa53d347fb77f1d at offset 0x09eacfe0.
  Sequential Increment:   Solid Bits          : testing   0FAILURE: 0xffffffffffffffff != \
0xfffffffffffffeff at offset 0x09eacfe0.
  Block Sequential    : testing  25FAILURE: 0x1919191919191919 != 0x1919191919191819 at offset 0x026aa6c8.
  Checkerboard        : testing   0FAILURE: 0x5555555555555555 != 0x5555555555555455 at offset 0x09eacfe0.
  Bit Spread          : testing   0FAILURE: 0xfffffffffffffffa != 0xfffffffffffffefa at offset 0x026aa6c8.
"""

# F5OEO/tezuka_fw#370 (2026-07-26): memtester 4.7.1 (32-bit) on a Zynq (ARM) SDR; the stored
# excerpt ends on the first label.
TEZUKA_HEADER = """\
# memtester 400M 3
memtester version 4.7.1 (32-bit)
Copyright (C) 2001-2024 Charles Cazabon.
Licensed under the GNU General Public License version 2 (only).

pagesize is 4096
pagesizemask is 0xfffff000
want 400MB (419430400 bytes)
got  400MB (419430400 bytes), trying mlock ...locked.
Loop 1/3:
  Stuck Address       :"""


def _oks(names) -> dict:
    return {name: {"ok": 1, "failed": 0} for name in names}


def test_ok3576_rockchip_build_pass():
    out = stress.parse_memtester(OK3576_ROCKCHIP_PASS)
    assert list(out) == list(stress.MEMTESTER_KEYS)
    assert out["version"] == "4.5.1_20231020" and out["bits"] == 32
    assert out["requested_bytes"] == out["got_bytes"] == out["locked_bytes"] == 104857600
    assert (out["loops_requested"], out["loops_done"]) == (1, 1)
    assert out["tests"] == _oks(stress.MEMTESTER_TESTS)
    assert (out["reported_status"], out["reported_failures"]) == ("PASS", 0)
    assert out["failures"] == [] and out["failure_count"] == 0 and out["errors"] == []
    assert out["status"] == "PASS" and out["complete"] and out["cut_short"] is None


def test_upstream_451_pass_with_done():
    out = stress.parse_memtester(GUIDES_451_PASS)
    assert out["version"] == "4.5.1" and out["bits"] == 64 and out["locked_bytes"] == 1073741824
    assert out["tests"] == _oks(stress.MEMTESTER_TESTS) and out["reported_status"] is None
    assert out["status"] == "PASS" and out["complete"]


def test_lima_arm_failure_with_progress_and_merged_stderr():
    out = stress.parse_memtester(LIMA_ARM_FAIL)
    assert out["version"] == "4.3.0" and out["loops_requested"] is None
    assert out["tests"]["Solid Bits"] == {"ok": 0, "failed": 1}
    assert sum(t["ok"] for t in out["tests"].values()) == 9
    assert out["failure_count"] == 4
    assert out["failures"][0] == "FAILURE: 0xffffffff != 0xffffff00 at offset 0x099e03bc."
    assert out["status"] == "FAIL" and out["complete"] is False
    assert out["cut_short"] == "ends inside loop 1, between tests"


def test_friendlyarm_labels_without_results_and_late_failures():
    out = stress.parse_memtester(FRIENDLYARM_FAILURES)
    failed = {name for name, t in out["tests"].items() if t["failed"]}
    assert failed == {"Stuck Address", "Random Value", "Compare XOR", "Compare SUB", "Compare MUL",
                      "Compare DIV", "Compare OR", "Sequential Increment", "Solid Bits", "Block Sequential",
                      "Checkerboard", "Bit Spread"}
    assert out["tests"]["Compare AND"] == {"ok": 1, "failed": 0}  # the late FAILURE below it is not its
    assert out["loops_requested"] == 5 and out["loops_done"] == 0
    assert out["failure_count"] == 12
    assert out["failures"][0] == "FAILURE: possible bad address line at offset 0x19eac7e8."
    # a test stops at its first failing pass (tests.c returns -1), so Bit Spread is over too
    assert out["status"] == "FAIL" and out["cut_short"] == "ends inside loop 2/5, between tests"


def test_tezuka_header_only():
    out = stress.parse_memtester(TEZUKA_HEADER)
    assert out["version"] == "4.7.1" and out["requested_bytes"] == 419430400 and out["loops_requested"] == 3
    assert out["tests"] == {} and out["status"] is None
    assert out["cut_short"] == "ends during Stuck Address in loop 1/3"


def test_debian_progress_and_backspaces():
    out = stress.parse_memtester(DEBIAN_MEMTESTER_PIPE)
    assert out["version"] == "4.6.0" and out["locked_bytes"] == 1048576
    # the mask keeps Random Value; Stuck Address always runs
    assert out["tests"] == _oks(["Stuck Address", "Random Value"])
    assert out["status"] == "PASS" and out["complete"] and out["loops_done"] == 1
    # the same bytes through a serial console (CRLF), and read by hil parse
    assert stress.parse_memtester(DEBIAN_MEMTESTER_PIPE.replace("\n", "\r\n")) == out


def test_label_failed_when_stderr_was_discarded():
    # CONSTRUCTED: GUIDES_451_PASS with Bit Flip failing and stderr not captured: its label gets no
    # "ok" and the next label follows on the same line (memtester.c prints no newline for a fail)
    text = GUIDES_451_PASS.replace("  Bit Flip            : ok         \n", "  Bit Flip            : ")
    out = stress.parse_memtester(text)
    assert out["tests"]["Bit Flip"] == {"ok": 0, "failed": 1} and out["tests"]["Walking Ones"]["ok"] == 1
    assert out["failures"] == [] and out["status"] == "FAIL" and out["complete"]


def test_interrupted_run_is_not_a_failure():
    # CONSTRUCTED from OK3576_ROCKCHIP_PASS: stopped with ^C during Solid Bits (as an RK3568 capture
    # of the same build shows: "setting   3^C", then the result block, still "Status: PASS.")
    head = OK3576_ROCKCHIP_PASS.split("  Solid Bits")[0]
    tail = "\n\n" + OK3576_ROCKCHIP_PASS.split("16-bit Writes       : ok\n\n", 1)[1]
    out = stress.parse_memtester(head + "  Solid Bits          : setting   3^C" + tail)
    assert out["reported_status"] == "PASS" and out["status"] is None and not out["complete"]
    assert "Solid Bits" not in out["tests"] and out["loops_done"] == 0
    assert out["cut_short"] == "is interrupted (^C) during Solid Bits in loop 1/1"


def test_more_loops_requested_than_done():
    # CONSTRUCTED: GUIDES_451_PASS asked for 2 loops but the capture ends after the first one
    text = GUIDES_451_PASS.replace("Loop 1/1:", "Loop 1/2:").replace("Done.\n", "")
    out = stress.parse_memtester(text)
    assert out["loops_done"] == 1 and out["status"] is None
    assert out["cut_short"] == "ends after 1 of 2 loops"


def test_nonstarter_and_oom_kill():
    # memtester.c's usage() after "need memory argument, in MB"; CONSTRUCTED: the header of
    # TEZUKA_HEADER with the kernel's OOM kill in the mlock line (as a cgroup-limited run prints it)
    out = stress.parse_memtester("memtester version 4.5.1 (64-bit)\nneed memory argument, in MB\n\n"
                                 "Usage: memtester [-p physaddrbase [-d device]] <mem>[B|K|M|G] [loops]\n")
    assert out["errors"][0] == "need memory argument, in MB" and out["status"] == "FAIL" and out["cut_short"] is None
    head = TEZUKA_HEADER.split("got")[0]
    killed = stress.parse_memtester(head + "got  400MB (419430400 bytes), trying mlock ...Killed\n")
    assert killed["errors"] == ["Killed"] and killed["locked_bytes"] is None and killed["status"] == "FAIL"


def test_nothing_recognised_memtester():
    out = stress.parse_memtester(NO_CAPTURE)
    assert out["cut_short"] == "holds no memtester output" and out["status"] is None


def test_rockchip_memtester_fail_line_is_not_stressapptest_verdict():
    # CONSTRUCTED: OK3576_ROCKCHIP_PASS with one Bit Flip failure, its result block as tests.c's
    # exit_result() prints it then; on a shared console stressapptest's parser must not take it
    text = OK3576_ROCKCHIP_PASS.replace(
        "  Bit Flip            : ok\n",
        "  Bit Flip            : FAILURE: 0x00000400 != 0x00000000 at offset 0x01234567.\n").replace(
        "had found 0 failures.\n\nStatus: PASS.", "had found 1 failures.\n\nStatus: FAIL - EXIT_FAIL_OTHERTEST")
    mt = stress.parse_memtester(text)
    assert mt["reported_status"] == "FAIL" and mt["reported_failures"] == 1 and mt["status"] == "FAIL"
    assert mt["tests"]["Bit Flip"] == {"ok": 0, "failed": 1} and mt["complete"]
    sat = stress.parse_stressapptest(VIRTUALCLIENT_PASS.replace("Status: PASS", "Status: XPASS") + text)
    assert sat["status"] is None


def test_two_memtester_runs():
    runs = stress.memtester_runs(GUIDES_451_PASS + OK3576_ROCKCHIP_PASS)
    assert [r["version"] for r in runs] == ["4.5.1", "4.5.1_20231020"]


# --- hil parse ------------------------------------------------------------------------------------------

def test_cli_both_tools_on_one_console(tmp_path, capsys):
    # CONSTRUCTED: a soak console with both tools (rockchip-test runs them at once), the OK3576
    # memtester lines after the VirtualClient ones, CRLF as a serial capture has them
    text = (VIRTUALCLIENT_PASS + OK3576_ROCKCHIP_PASS).replace("\n", "\r\n")
    out, err = hil_parse(capsys, "stress", tmp_path / "soak.log", text.encode())
    assert err == ""
    assert out["stressapptest"] == stress.parse_stressapptest(VIRTUALCLIENT_PASS)
    assert out["memtester"] == stress.parse_memtester(OK3576_ROCKCHIP_PASS)


def test_cli_warnings(tmp_path, capsys):
    out, err = hil_parse(capsys, "stress", tmp_path / "x.log", NO_CAPTURE)
    assert out == {"stressapptest": None, "memtester": None}
    assert err.startswith(f"warning: {tmp_path / 'x.log'} does not look like stressapptest or memtester output")
    out, err = hil_parse(capsys, "stress", tmp_path / "y.log", OSISM_PASS + VIRTUALCLIENT_PASS)
    assert out["stressapptest"]["version"] == "1.0.6_autoconf" and out["memtester"] is None
    assert "holds 2 runs of stressapptest" in err


def test_cli_missing_file(tmp_path, capsys):
    check_missing_file(tmp_path, capsys, "stress")


def test_cli_stdin():
    out = hil_parse_stdin("stress", ISSUE117_PROCEDURAL, ("stressapptest", "memtester"))
    assert out["stressapptest"]["status"] == "FAIL" and out["memtester"] is None
