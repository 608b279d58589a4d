"""hil.lab.powercut: what the writer printed before the cut, and what the board says after the boot,
read from the real writer (run under the host's busybox) and real kernel lines."""

from __future__ import annotations

import subprocess

import pytest

from hil.lab.powercut import check_command, classify, verify, writer_command
from selftest.unit.localboard import BUSYBOX

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the board's shell) on the host")

# Kernel lines of real storage failures (public reports): an RK3399-class eMMC timeout that aborted
# the journal, a rejected buddy bitmap after brown-outs; and what a clean journal replay prints.
REAL_ERRORS = """\
[3585.276] JBD2: I/O error when updating journal superblock for mmcblk0p3-8.
[3590.323] EXT4-fs error (device mmcblk0p3): ext4_journal_check_start:87: comm balance_bot: Detected aborted journal
[    3.003096] EXT4-fs error (device mmcblk0p1): ext4_mb_generate_buddy:1100: group 81, block bitmap and bg descriptor inconsistent: 30994 vs 31229 free clusters
"""
CLEAN_REPLAY = """\
[    2.412050] EXT4-fs (vda): recovery complete
[    2.418931] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.
"""


def _write_for(seconds: float, directory) -> str:
    """The writer's real output after ``seconds`` (then killed, as the power cut kills it)."""
    proc = subprocess.Popen([BUSYBOX, "sh", "-c", writer_command(str(directory), kib=16, pause_s=0.05)], stdout=subprocess.PIPE,
                            text=True)
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _check(directory) -> str:
    return subprocess.run([BUSYBOX, "sh", "-c", check_command(str(directory))], capture_output=True, text=True,
                          timeout=60).stdout


def test_a_writer_cut_at_any_moment_leaves_its_synced_files_as_announced(tmp_path):
    d = tmp_path / "userdata" / "hil-powercut"
    out = _write_for(1.0, d)
    synced, unsynced = classify(out)
    assert len(synced) >= 3, out[-500:]
    assert len(unsynced) <= 1, "only a file written after the last sync is unsynced"
    assert all(name.startswith(("f", "u")) for name in synced)
    lost, gone, errors, fsck = verify(synced, unsynced, _check(d))
    assert lost == [] and gone == [], "nothing was cut here: every file is as announced"


def test_a_changed_or_missing_synced_file_is_named_and_a_lost_unsynced_one_reported(tmp_path):
    d = tmp_path / "hil-powercut"
    synced, unsynced = classify(_write_for(1.0, d))
    names = sorted(n for n in synced if n.startswith("f"))
    (d / names[0]).write_bytes(b"torn by the cut")
    (d / names[1]).unlink()
    for name in unsynced:
        (d / name).unlink()
    lost, gone, _, _ = verify(synced, unsynced, _check(d))
    assert lost == [f"{names[0]} (changed)", f"{names[1]} (missing)"]
    assert gone == sorted(unsynced)


def test_the_kernel_s_storage_errors_count_and_a_clean_journal_replay_does_not():
    check = "@dmesg\n" + CLEAN_REPLAY + REAL_ERRORS + "@device /dev/mmcblk0p3\n@no-fsck no e2fsck on the board\n@hashes\n"
    _, _, errors, fsck = verify({}, {}, check)
    assert len(errors) == 3 and errors[1].startswith("[3590.323] EXT4-fs error") and fsck == "no e2fsck on the board"
    _, _, errors, fsck = verify({}, {}, "@dmesg\n" + CLEAN_REPLAY + "@device /dev/vda\n@fsck\n"
                                        "userdata: 25/32768 files (4.0% non-contiguous), 4373/131072 blocks\n"
                                        "@fsck-status 0\n@hashes\n")
    assert errors == [] and fsck == "clean"
    _, _, errors, fsck = verify({}, {}, "@dmesg\n@device /dev/vda\n@fsck\nInode bitmap differences: -(11649--11664)\n"
                                        "Fix? no\n@fsck-status 4\n@hashes\n")
    assert fsck == "errors (status 4)" and "Inode bitmap differences" in errors[0]


def _tools(tmp_path, mount_status: int) -> dict:
    """A PATH whose mount and e2fsck log their calls: mount exits ``mount_status``, e2fsck prints
    a clean check's summary as e2fsprogs 1.47 does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    (bin_dir / "mount").write_text(f"#!/bin/sh\necho \"mount $*\" >> {log}\nexit {mount_status}\n")
    (bin_dir / "e2fsck").write_text(f"#!/bin/sh\necho \"e2fsck $*\" >> {log}\n"
                                    "echo 'userdata: 25/32768 files (4.0% non-contiguous), 4373/131072 blocks'\n")
    for tool in ("mount", "e2fsck"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "log": log}


@pytest.mark.parametrize("mount_status", [0, 1])
def test_e2fsck_checks_the_partition_only_once_it_is_remounted_read_only(tmp_path, mount_status):
    """On a read-write mount e2fsck -n reads a live filesystem: the check remounts it read-only
    first and back after, and leaves a partition in use unchecked, saying so. Run by the host's
    /bin/sh (busybox sh would run its own mount applet, not the one on PATH)."""
    d = tmp_path / "hil-powercut"
    d.mkdir()
    tools = _tools(tmp_path, mount_status)
    out = subprocess.run(["/bin/sh", "-c", check_command(str(d))], capture_output=True, text=True, timeout=60,
                         env={"PATH": tools["PATH"]}).stdout
    _, _, errors, fsck = verify({}, {}, out)
    calls = tools["log"].read_text().splitlines()
    mountpoint = calls[0].rsplit(" ", 1)[1]
    assert calls[0] == f"mount -o remount,ro {mountpoint}" and str(d).startswith(mountpoint)
    if mount_status == 0:
        device = out.split("@device ", 1)[1].split()[0]
        assert calls[1:] == [f"e2fsck -fn {device}", f"mount -o remount,rw {mountpoint}"] and fsck == "clean"
    else:
        assert calls[1:] == [] and fsck == f"not run: {mountpoint} could not be remounted read-only (in use)"
    assert errors == []
