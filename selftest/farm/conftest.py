"""Run the qualification suite on a farm: a 2-board bench, its coordinator and exporter, and
pytest-xdist workers, in a subprocess; read its JUnit file, result records and console logs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import attr
import pytest

from hil.paths import REPO, twin_dir

TIMESCALE = 0.1
SUITE_TIMEOUT = 900
BOARD_SUFFIX = re.compile(r"@([\w.-]+)\]?$")


@attr.s
class FarmRun:
    returncode = attr.ib()
    output = attr.ib(repr=False)
    folder = attr.ib(repr=False)
    cases = attr.ib(factory=list)  # one dict per JUnit testcase: test, board, outcome, message, properties
    suite_properties = attr.ib(factory=dict)
    records = attr.ib(factory=list)  # the run's results.jsonl

    def by_board(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for case in self.cases:
            out.setdefault(case["board"], []).append(case["test"])
        return out

    def failed(self) -> dict:
        return {f"{c['test']}@{c['board']}": c["message"] for c in self.cases if c["outcome"] in ("failed", "error")}

    def console(self, place: str) -> str:
        path = self.folder / "console" / place / "console_main"
        return path.read_text(errors="replace") if path.exists() else ""


def read_cases(junit: Path) -> tuple[list[dict], dict]:
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    cases = []
    for tc in suite.iter("testcase"):
        name = tc.get("name")
        tprops = {p.get("name"): p.get("value") for p in tc.iter("property")}
        m = BOARD_SUFFIX.search(name)
        board = tprops.get("board")
        if m:  # fan-out: test@place or test[params@place]
            assert m.group(1) == board, f"{name}: name says {m.group(1)}, property board says {board}"
            name = name[:m.start()] + ("]" if name.endswith("]") else "")
        outcome, message = "passed", ""
        for tag, what in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            el = tc.find(tag)
            if el is not None:
                outcome, message = what, (el.get("message") or "") + "\n" + (el.text or "")
                break
        module = Path(tc.get("file") or tc.get("classname", "").replace(".", "/") + ".py").name
        cases.append({"test": f"{module}::{name}", "board": board, "outcome": outcome, "message": message,
                      "properties": tprops})
    return cases, props


@pytest.fixture(scope="module")
def bench(start_bench):
    return start_bench(boards=2, timescale=TIMESCALE)


@pytest.fixture(scope="session")
def run_farm(tmp_path_factory):
    """Factory: run ``pytest --lg-env <farm env> ARGS`` against a 2-board bench."""

    def run(bench, *args: str, env: dict | None = None, timeout: float = SUITE_TIMEOUT, env_edits=()) -> FarmRun:
        """``env_edits``: (old, new) texts replaced in the farm env file, each of which must be there."""
        out = tmp_path_factory.mktemp("farm")
        env_file = bench.farm_env_file(out)
        text = env_file.read_text()
        for old, new in env_edits:
            assert old in text, f"{old!r} is not in the farm env file"
            text = text.replace(old, new)
        env_file.write_text(text)
        junit = out / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "--lg-env", str(env_file), f"--junitxml={junit}",
               f"--lg-log={out / 'console'}", f"--results={out / 'results'}", "--history=none",
               "-p", "no:cacheprovider", "-rfEs", *args]
        environ = {**os.environ, "HIL_BENCH_DIR": str(bench.config.state_dir), **(env or {})}
        for name in ("LG_PLACE", "LG_PLACES", "LG_ENV", "LG_COORDINATOR"):
            if name not in (env or {}):
                environ.pop(name, None)
        proc = subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=timeout)
        run = FarmRun(returncode=proc.returncode, output=proc.stdout + proc.stderr, folder=out)
        if junit.exists():
            run.cases, run.suite_properties = read_cases(junit)
        results = sorted((out / "results").glob("*/results.jsonl"))
        if results:
            run.records = [json.loads(line) for line in results[0].read_text().splitlines() if line.strip()]
        return run

    return run


def collected(*args: str) -> list[str]:
    """The suite's test ids (file::name), as pytest collects them for the twin (whose vision
    set gives the vision tests their parameters)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(REPO / "env" / "twin.yaml"),
                           "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    ids = [line.strip() for line in proc.stdout.splitlines() if "::" in line]
    assert ids, f"nothing collected:\n{proc.stdout}{proc.stderr}"
    return [f"{Path(i.split('::', 1)[0]).name}::{i.split('::', 1)[1]}" for i in ids]


def flash(bench, board: int, image: str) -> None:
    """Write a firmware image into a board's eMMC through the bench's rockusb loader, as a lab
    tech with the maskrom button would."""
    data = (twin_dir() / "images" / f"{image}.img").read_bytes()
    for method, path, body in (("GET", f"/outlet/{board}/0", None), ("PUT", f"/maskrom/{board}", b"1"),
                               ("GET", f"/outlet/{board}/1", None), ("POST", f"/usb/{board}/db", None),
                               ("PUT", f"/usb/{board}/image", data), ("GET", f"/outlet/{board}/0", None),
                               ("PUT", f"/maskrom/{board}", b"0")):
        status, reply = bench.call(method, path, body)
        assert status == 200, f"{method} {path}: {status} {reply.decode(errors='replace')}"
    assert bench.board(board)["image"] == image


def boots(bench) -> dict[int, int]:
    return {n: bench.board(n)["boots"] for n in (1, 2)}


def held(bench) -> dict[str, str]:
    """The bench's places that somebody holds, and who."""
    from hil.lab import places

    return {p: i["acquired"] for p, i in places.places_info(bench.state["coordinator"]).items() if i["acquired"]}
