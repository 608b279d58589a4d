"""Run the qualification suite (tests/) in a subprocess against a twin, and read its JUnit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import attr
import pytest

from hil.paths import REPO
from hil.twin import deploykit, models

SUITE_TIMEOUT = 900
REFERENCE_MODEL = "qwen2-vl-2b-instruct_w4a16_rk3576"


@attr.s
class SuiteRun:
    returncode = attr.ib()
    seconds = attr.ib()
    output = attr.ib(repr=False)
    junit = attr.ib(repr=False)  # Path
    folder = attr.ib(repr=False)  # the run's folder (JUnit, console logs)
    cases = attr.ib(factory=dict)  # "file::name" -> {"outcome", "message", "properties"}

    def outcome(self, case: str) -> str:
        assert case in self.cases, f"{case} did not run; cases: {sorted(self.cases)}\n{self.output[-3000:]}"
        return self.cases[case]["outcome"]

    def message(self, case: str) -> str:
        return self.cases[case]["message"]

    def texts(self) -> str:
        """Everything the run wrote: output, JUnit, console logs, run folder (not the env file it was given)."""
        files = [self.junit, *(p for sub in ("console", "results") for p in (self.folder / sub).rglob("*")
                               if p.is_file())]
        return self.output + "".join(p.read_text(errors="replace") for p in files)

    def failed(self) -> dict:
        return {k: v["message"] for k, v in self.cases.items() if v["outcome"] in ("failed", "error")}

    @property
    def run_dir(self) -> Path:
        """The run's result folder (results.jsonl, run.json, report.html)."""
        return (self.folder / "results" / "latest").resolve()


def read_junit(path: Path) -> dict:
    cases = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        module = tc.get("file") or tc.get("classname", "").replace(".", "/") + ".py"
        name = f"{Path(module).name}::{tc.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            if tc.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                break
        # every failure and error of the test (a failed setup and a failed teardown are two)
        message = "\n".join((el.get("message") or "") + "\n" + (el.text or "")
                            for el in tc if el.tag in ("failure", "error", "skipped"))
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        old = cases.get(name)
        if old is not None:  # a failing call and an erroring teardown: keep both, worst outcome first
            rank = ["failed", "error", "skipped", "passed"]
            outcome = min(outcome, old["outcome"], key=rank.index)
            message, props = old["message"] + "\n" + message, {**old["properties"], **props}
        cases[name] = {"outcome": outcome, "message": message, "properties": props}
    return cases


@pytest.fixture(scope="session")
def history_db(tmp_path_factory) -> Path:
    """One history database for every suite run of the session, as a lab keeps one."""
    return tmp_path_factory.getbasetemp() / "history.sqlite"


def suite_command(env_file: Path, out: Path, history: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--lg-env", str(env_file), "tests", f"--junitxml={out / 'junit.xml'}",
            f"--lg-log={out / 'console'}", f"--results={out / 'results'}", f"--history={history}",
            "-p", "no:cacheprovider", "-q", "-rfEs", *args]


def finished_tests(out: Path) -> list[str]:
    """The node ids a running suite has finished so far (its run folder, as it is written)."""
    results = out / "results" / "latest" / "results.jsonl"
    try:
        lines = results.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "test":
            found.append(record["nodeid"])
    return found


@pytest.fixture(scope="session")
def run_suite(tmp_path_factory, history_db):
    """Factory: run ``pytest --lg-env ENV tests ARGS`` against a started bench."""

    def run(bench, *args: str, board: int = 1, timeout: float = SUITE_TIMEOUT, env_edits=(),
            during=None, junit: bool = True, real_tool: bool = False) -> SuiteRun:
        """``env_edits``: (old, new) texts replaced in the env file, each of which must be there.
        ``during(proc, out)``: called while the suite runs until it returns True (it acted).
        ``real_tool``: env/twin-rkdeveloptool.yaml, flashed with the real rkdeveloptool."""
        out = tmp_path_factory.mktemp("suite")
        env_file = bench.env_file(out, board, real_tool=real_tool)
        text = env_file.read_text()
        for old, new in env_edits:
            assert old in text, f"{old!r} is not in the env file"
            text = text.replace(old, new)
        env_file.write_text(text)
        junit_file = out / "junit.xml"
        cmd = suite_command(env_file, out, history_db, *args)
        env = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir)}
        start = time.monotonic()
        with open(out / "output.log", "w+") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True)
            try:
                acted = during is None
                while proc.poll() is None:
                    if time.monotonic() - start > timeout:
                        raise AssertionError(f"the suite did not end within {timeout} s")
                    if not acted:
                        acted = bool(during(proc, out))
                    time.sleep(0.2)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
            log.seek(0)
            output = log.read()
        result = SuiteRun(returncode=proc.returncode, seconds=time.monotonic() - start,
                          output=output, junit=junit_file, folder=out)
        if junit:
            assert junit_file.exists(), f"the suite wrote no JUnit file (exit {proc.returncode}):\n{output[-4000:]}"
            result.cases = read_junit(junit_file)
        return result

    return run


def after_test(test: str, delay: float, action):
    """A ``during`` callback: ``action(proc)`` once ``test`` has finished and ``delay`` s passed."""
    seen = {}

    def during(proc, out) -> bool:
        if "t" not in seen and any(n.endswith(test) for n in finished_tests(out)):
            seen["t"] = time.monotonic()
        if "t" in seen and time.monotonic() - seen["t"] >= delay:
            action(proc)
            return True
        return False

    return during


def vendor_files(tmp_path, model: str) -> list[str]:
    """What a vendor engineer has after following Rockchip's guide: the SDK's demo build where the
    SDK installs it, and the model zoo's two files; no runtime.yaml, no model.json anywhere."""
    sdk = deploykit.write_sdk(tmp_path / "rknn-llm" / "examples" / "multimodal_model_demo")
    llm, vision = models.write_model(tmp_path / "model-zoo", model)
    written = [p.name for p in tmp_path.rglob("*")]
    assert not {"runtime.yaml", "model.json", "models.yaml"} & set(written)
    return ["--demo-dir", str(sdk), "--llm", str(llm), "--vision", str(vision)]


@pytest.fixture(scope="session")
def suite_bench(start_bench):
    """The bench of the modules that run the whole suite (test_results_twin, test_suite_twin), so
    that they share one reference run."""
    return start_bench(boards=1, timescale=0.1)


@pytest.fixture(scope="session")
def reference_run(suite_bench, run_suite, tmp_path_factory) -> SuiteRun:
    """The whole suite on the reference image, flashed, from the files a vendor has: its verdicts
    are test_suite_twin's to check, its report and history test_results_twin's."""
    return run_suite(suite_bench, "--image", "twin-good", *vendor_files(tmp_path_factory.mktemp("vendor"),
                                                                        REFERENCE_MODEL))
