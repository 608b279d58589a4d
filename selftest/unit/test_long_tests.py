"""The long tests' options (hil.suite.endurance), their progress display (hil.suite.progress) and
their steps on disk (hil.measure.endurancelog)."""

from __future__ import annotations

import io
import subprocess
import sys
import types

import pytest

from hil.measure.endurancelog import EnduranceLog, log_path
from hil.paths import REPO
from hil.suite.endurance import DEFAULT_POWER_CYCLES, EnduranceConfig, EnduranceError, parse_duration
from hil.suite.progress import Progress


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5h", 5400),
                                           ("1h30m", 5400), (" 2H ", 7200), ("1m 30s", 90)])
def test_durations_in_seconds_minutes_and_hours(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2d", "-5m", "0s", "1h-", "two hours", "1e3"])
def test_a_bad_duration_names_the_option_and_the_forms(text):
    with pytest.raises(EnduranceError, match=r"--soak-duration .*(not a duration; write it as 90s, 15m, 2h|longer than 0)"):
        parse_duration(text, "--soak-duration")


def _options(**given):
    names = ("power_cycles", "reboots", "power_cuts", "soak_duration", "stress_duration")
    return types.SimpleNamespace(**{n: given.get(n) for n in names})


def test_defaults_and_given_options():
    plain = EnduranceConfig.from_options(_options())
    assert plain.power_cycles == DEFAULT_POWER_CYCLES and plain.given == frozenset()
    mine = EnduranceConfig.from_options(_options(power_cycles=5, soak_duration="1m"),
                                        {"boot_timeout": 45, "console_silence_timeout": "20"})
    assert (mine.power_cycles, mine.soak_s, mine.boot_timeout_s, mine.silence_s) == (5, 60, 45, 20)
    assert mine.given == {"power_cycles", "soak"}


@pytest.mark.parametrize("given, target, message", [
    ({"power_cycles": 0}, {}, "--power-cycles must be at least 1"),
    ({"reboots": -3}, {}, "--reboots must be at least 1"),
    ({"stress_duration": "forever"}, {}, "--stress-duration 'forever': not a duration"),
    ({}, {"boot_timeout": "soon"}, "target option boot_timeout: 'soon' is not a number above 0"),
    ({}, {"stress_memory_mib": -1}, "target option stress_memory_mib: -1 is not a number above 0"),
    ({}, {"console_silence_timeout": 0}, "target option console_silence_timeout: 0"),
])
def test_a_bad_count_or_timeout_stops_the_run_naming_it(given, target, message):
    with pytest.raises(EnduranceError, match=message):
        EnduranceConfig.from_options(_options(**given), target)


def test_a_long_test_runs_when_its_marker_is_named_or_its_option_given():
    plain = EnduranceConfig.from_options(_options())
    assert not plain.chosen("endurance", "power_cycles", "")
    assert plain.chosen("endurance", "power_cycles", "endurance")
    assert plain.chosen("soak", "soak", "soak or stress")
    assert not plain.chosen("endurance", "power_cycles", "endurance_extra")
    given = EnduranceConfig.from_options(_options(reboots=3))
    assert given.chosen("endurance", "reboots", "") and not given.chosen("endurance", "power_cycles", "")


def test_progress_off_a_terminal_writes_a_line_every_tenth():
    lines = []
    with Progress(50, "power cycles", stream=io.StringIO(), write_line=lines.append) as bar:
        for n in range(1, 51):
            bar.update(n, f"{n // 10} failed")
    assert lines[0] == "power cycles: 1 of 50 cycles, 0 failed"
    assert lines[-1] == "power cycles: 50 of 50 cycles, 5 failed"
    assert len(lines) == 11
    seconds = []
    with Progress(20, "soak", unit="s", stream=io.StringIO(), write_line=seconds.append) as bar:
        bar.update(20, "turn 43")
    assert seconds == ["soak: 20 of 20 s, turn 43"]


def test_progress_on_a_terminal_is_a_bar_written_with_capture_suspended():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream, suspended = Tty(), []

    class Suspend:
        def __enter__(self):
            suspended.append(True)

        def __exit__(self, *_):
            pass

    with Progress(4, "reboots", stream=stream, suspend=Suspend) as bar:
        for n in range(1, 5):
            bar.update(n, "0 failed")
    assert "reboots" in stream.getvalue() and "4/4" in stream.getvalue()
    assert len(suspended) >= 5, "every write to the terminal goes around pytest's capture"


def test_the_log_keeps_complete_steps_and_drops_a_line_cut_by_a_kill(tmp_path):
    path = log_path(tmp_path, "20261206-101500-ab12", "tests/test_endurance.py::test_power_cycles", "twin-1")
    assert path == tmp_path / "20261206-101500-ab12" / "endurance" / "test_power_cycles-twin-1.jsonl"
    log = EnduranceLog(path)
    log.append({"n": 1, "ok": True})
    log.append({"n": 2, "ok": False})
    with open(path, "a") as f:
        f.write('{"n": 3, "o')  # the process died mid-write
    assert EnduranceLog(path).read() == [{"n": 1, "ok": True}, {"n": 2, "ok": False}]


def _collect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(REPO / "env" / "twin.yaml"), "--collect-only",
                           "-q", "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


LONG = {"tests/test_endurance.py::test_power_cycles", "tests/test_endurance.py::test_reboots",
        "tests/test_endurance.py::test_power_cuts_during_writes", "tests/test_soak.py::test_inference_soak",
        "tests/test_stress.py::test_platform_stress_under_npu_load"}


def _collected(out: str) -> set[str]:
    return {line.strip() for line in out.splitlines() if line.startswith("tests/")}


def test_the_default_run_leaves_the_long_tests_out_and_says_so():
    out = _collect()
    assert out.returncode == 0, out.stdout + out.stderr
    assert not _collected(out.stdout) & LONG and "tests/test_boot.py::test_boots_to_shell" in _collected(out.stdout)
    assert "5 long tests not chosen (endurance, soak, stress)" in out.stdout


def test_a_marker_or_an_option_chooses_long_tests_and_they_run_last():
    out = _collect("-m", "endurance or soak or stress")
    assert _collected(out.stdout) == LONG, out.stdout
    out = _collect("--power-cycles", "5")
    collected = [line.strip() for line in out.stdout.splitlines() if line.startswith("tests/")]
    assert collected[-1] == "tests/test_endurance.py::test_power_cycles" and not set(collected[:-1]) & LONG
    bad = _collect("--soak-duration", "2x")
    assert bad.returncode != 0 and "--soak-duration '2x': not a duration" in bad.stderr + bad.stdout
