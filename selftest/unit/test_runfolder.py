"""The run's result folder: records survive a process killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from hil.measure.records import ProvenanceRecord, TestRecord
from hil.measure.runfolder import RESULTS_FILE, RunFolder, RunFolderError


def test_create_append_read_back(tmp_path):
    folder = RunFolder.create(tmp_path, run_id="r1", options={"model": "m"})
    folder.append({"type": "provenance", "board": "twin-1", "data": {"kernel": "6.1", "image": "a"}})
    folder.append({"type": "test", "nodeid": "t::a", "board": "twin-1", "outcome": "passed"})
    folder.append({"type": "provenance", "board": "twin-1", "data": {"image": "b", "rknpu_driver": "0.9.8"}})
    again = RunFolder.open(tmp_path / "r1")
    assert again.run_id == "r1" and again.info()["finished"] is None and again.info()["options"] == {"model": "m"}
    assert [t.nodeid for t in again.tests()] == ["t::a"]
    assert again.provenance() == {"twin-1": {"kernel": "6.1", "image": "b", "rknpu_driver": "0.9.8"}}
    assert [type(r) for r in again.records()] == [ProvenanceRecord, TestRecord, ProvenanceRecord]
    assert [r.data for r in again.records(ProvenanceRecord)] == [{"kernel": "6.1", "image": "a"},
                                                                 {"image": "b", "rknpu_driver": "0.9.8"}]
    assert (tmp_path / "latest").resolve() == (tmp_path / "r1").resolve()
    again.update_info(finished="now", exitstatus=1)
    assert json.loads((tmp_path / "r1" / "run.json").read_text())["exitstatus"] == 1


def test_a_truncated_last_line_is_skipped(tmp_path):
    folder = RunFolder.create(tmp_path, run_id="r2")
    folder.append({"type": "test", "nodeid": "t::a", "outcome": "passed"})
    with open(folder.path / RESULTS_FILE, "a") as f:
        f.write('{"type": "test", "nodeid": "t::b", "outc')
    assert [t.nodeid for t in folder.tests()] == ["t::a"]


def test_records_written_before_a_kill_are_on_disk(tmp_path):
    """A writer killed with SIGKILL right after append() returned keeps that record."""
    script = (
        "import sys, time\n"
        "from hil.measure.runfolder import RunFolder\n"
        f"f = RunFolder.create({str(tmp_path)!r}, run_id='r3')\n"
        "for i in range(3):\n"
        "    f.append({'type': 'test', 'nodeid': f't::{i}', 'outcome': 'passed'})\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert [t.nodeid for t in RunFolder.open(tmp_path / "r3").tests()] == ["t::0", "t::1", "t::2"]


def test_a_folder_that_is_no_run_is_named(tmp_path):
    with pytest.raises(RunFolderError, match="not a run's result folder"):
        RunFolder.open(tmp_path)


def test_run_ids_are_unique_and_sortable(tmp_path):
    a = RunFolder.create(tmp_path)
    b = RunFolder.create(tmp_path)
    assert a.run_id != b.run_id and a.run_id[:8].isdigit()
