"""Golden answers of a user's own model: recorded from a checked run (``hil golden accept``),
listed (``hil golden show``), never mistaken for a pass while missing, and the model's own keywords.

Runs are written by the suite's own recorder (``RunRecorder``), fed pytest's own reports, so
what is accepted here is what a run of the suite writes.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from hil.kit import golden, pictures, prompts
from hil.kit.golden import GOLDEN_DIR, GoldenAnswers, GoldenError, GoldenFile
from hil.kit.goldencmd import add_commands
from hil.measure.report import html
from hil.measure.runfolder import RESULTS_FILE, RunFolder
from hil.paths import REPO
from hil.suite.recorder import RunRecorder

BOARD = "rk3576-01"
MODEL = "my-qwen2-vl-2b"
RUNTIME = "1.2.1"
TEXT_IDS = [p.id for p in prompts.text_prompts()]
IMAGE_IDS = [p.id for p in prompts.image_prompts()]
PICTURES = [p["file"] for p in pictures.load()]
TEXT = {i: f"The answer to {i}, line one.\nLine two of {i}." for i in TEXT_IDS}
IMAGE = {pic: {i: f"{pic} seen by {i}: 一个圆" for i in IMAGE_IDS} for pic in PICTURES}


class SuiteRun:
    """A run of the suite as ``RunRecorder`` writes it, test by test, from pytest's reports."""

    def __init__(self, results: Path, *, history: bool = True) -> None:
        suite = SimpleNamespace(image=None, model=SimpleNamespace(name=MODEL), repeat=1, baseline=None,
                                limits_files=[], results_dir=results, board_id=BOARD,
                                history_path=results / "history.sqlite" if history else None)
        self.recorder = RunRecorder(suite, argv=["--lg-env", "env/my-board.yaml", "tests"])
        self.run_id = self.recorder.run_id
        self.folder = self.recorder.folder

    def test(self, nodeid: str, outcome: str = "passed", properties=(), message: str = "", board: str = BOARD,
             provenance: dict | None = None) -> None:
        props = [("board", board), *properties]
        longrepr = (nodeid, 1, f"Skipped: {message}") if outcome == "skipped" else message or None
        hil = {"board": board, "test": nodeid, "provenance": provenance or {}, "lab_fault": None}
        for when, result, text in (("setup", "passed", None), ("call", outcome, longrepr),
                                   ("teardown", "passed", None)):
            report = pytest.TestReport(nodeid, (nodeid, 1, nodeid), {}, result, text, when, duration=0.5,
                                       user_properties=props)
            report.hil = hil
            self.recorder.add_report(report)

    def finish(self) -> "SuiteRun":
        self.folder.update_info(finished="2026-12-01T10:30:00+01:00", exitstatus=0)
        if self.recorder.history is not None:
            self.recorder.history.finish_run(self.run_id, "2026-12-01T10:30:00+01:00", 0)
            self.recorder.history.close()
        return self


def provenance(model=MODEL, runtime=RUNTIME, board=BOARD) -> dict:
    return {"board": board, "model": model, "rkllm_runtime": runtime, "model_sha256": "ab" * 32}


def answer_tests(run: SuiteRun, text=None, image=None, board=BOARD, fail=None, model=MODEL,
                 runtime=RUNTIME) -> None:
    """The answer tests as tests/ record them (``fail``: the test id that fails on its keywords)."""
    text, image = TEXT if text is None else text, IMAGE if image is None else image
    first = True
    for prompt_id, answer in text.items():
        nodeid = f"tests/test_text_inference.py::test_text_answer[{prompt_id}]"
        outcome = "failed" if fail == nodeid else "passed"
        run.test(nodeid, outcome, [(f"answer.{prompt_id}", answer)], board=board,
                 message="AssertionError: answer lacks ['Paris']" if outcome == "failed" else "",
                 provenance=provenance(model, runtime, board) if first else None)
        first = False
    for picture, answers in image.items():
        nodeid = f"tests/test_multimodal.py::test_picture_answers[{picture}]"
        outcome = "failed" if fail == nodeid else "passed"
        run.test(nodeid, outcome, [("picture", picture), *((f"answer.{i}", a) for i, a in answers.items())],
                 board=board, message="AssertionError: lacks ['red']" if outcome == "failed" else "")


def golden_tests_without_answers(run: SuiteRun, directory: Path, board=BOARD, model=MODEL) -> None:
    """The golden tests as tests/ run them when nothing is recorded: skipped, marked, with how to record."""
    missing = GoldenAnswers.load(model, RUNTIME, directory)
    for what, nodeid in [*((i, f"tests/test_text_inference.py::test_text_golden[{i}]") for i in TEXT_IDS),
                         *((p, f"tests/test_multimodal.py::test_picture_golden[{p}]") for p in PICTURES)]:
        run.test(nodeid, "skipped", missing.not_recorded_properties(run.run_id), board=board,
                 message=missing.not_recorded(what, run.run_id))


def good_run(results: Path, directory: Path, **kwargs) -> SuiteRun:
    run = SuiteRun(results, history=kwargs.pop("history", True))
    answer_tests(run, **kwargs)
    golden_tests_without_answers(run, directory)
    return run.finish()


def hil(*argv) -> int:
    parser = argparse.ArgumentParser(prog="hil")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def dirs(tmp_path):
    return SimpleNamespace(results=tmp_path / "results", golden=tmp_path / "golden")


# --- the run keeps each answer ----------------------------------------------------------------------

def test_every_answer_reaches_results_jsonl_as_the_recorder_writes_it(dirs):
    run = good_run(dirs.results, dirs.golden)
    lines = (run.folder.path / RESULTS_FILE).read_text(encoding="utf-8")
    assert "一个圆" in lines  # as written, not escaped
    found = golden.answers_of(RunFolder.open(run.folder.path).tests())
    assert list(found) == [BOARD]
    assert found[BOARD].text == TEXT and found[BOARD].image == IMAGE and not found[BOARD].failed


def test_answers_of_a_run_recorded_before_answers_named_their_prompt(dirs):
    """Older runs: a text answer under ``answer``, a picture only in the test's parameter."""
    run = SuiteRun(dirs.results)
    run.test("tests/test_text_inference.py::test_text_answer[en-capital]", properties=[("answer", "Paris.")],
             provenance=provenance())
    run.test("tests/test_multimodal.py::test_picture_answers[cat.png]", properties=[("answer.demo-menu-0", "A cat.")])
    found = golden.answers_of(run.finish().folder.tests())[BOARD]
    assert found.text == {"en-capital": "Paris."} and found.image == {"cat.png": {"demo-menu-0": "A cat."}}


# --- hil golden accept --------------------------------------------------------------------------------

def test_accept_by_run_id_writes_the_golden_file_the_suite_reads(dirs, capsys):
    run = good_run(dirs.results, dirs.golden)
    assert hil("golden", "accept", run.run_id, "--results", dirs.results, "--golden-dir", dirs.golden) == 0
    out = capsys.readouterr().out
    path = dirs.golden / f"{MODEL}.yaml"
    assert f"golden answers of {MODEL} on runtime {RUNTIME}: {len(TEXT)} text, {2 * len(PICTURES)} about " \
           f"{len(PICTURES)} pictures, from run {run.run_id} on board {BOARD} -> {path}" in out
    loaded = GoldenAnswers.load(MODEL, RUNTIME, dirs.golden)
    assert loaded.recorded
    assert all(loaded.text(i) == TEXT[i] for i in TEXT_IDS)
    assert all(loaded.picture(p) == IMAGE[p] for p in PICTURES)
    source = loaded.recorded_from
    assert (source["run"], source["board"], source["model_sha256"]) == (run.run_id, BOARD, "ab" * 32)
    assert source["date"] == run.folder.info()["started"] and source["accepted"]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Greedy answers of my-qwen2-vl-2b") and "一个圆" in text
    assert not GoldenAnswers.differs(TEXT["en-capital"], loaded.text("en-capital"))


@pytest.mark.parametrize("how", ["folder", "results.jsonl", "id-without-history"])
def test_accept_finds_a_run_as_baseline_accept_does(dirs, capsys, how):
    run = good_run(dirs.results, dirs.golden, history=how != "id-without-history")
    spec = {"folder": run.folder.path, "results.jsonl": run.folder.path / RESULTS_FILE,
            "id-without-history": run.run_id}[how]
    assert hil("golden", "accept", spec, "--results", dirs.results, "--golden-dir", dirs.golden) == 0, \
        capsys.readouterr().err
    assert GoldenAnswers.load(MODEL, RUNTIME, dirs.golden).recorded_from["run"] == run.run_id


def test_accept_of_an_unknown_run_names_where_it_looked(dirs, capsys):
    assert hil("golden", "accept", "20990101-000000-ffff", "--results", dirs.results,
               "--golden-dir", dirs.golden) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run '20990101-000000-ffff' is neither a run folder") and "`hil history`" in err
    assert not dirs.golden.exists()


def test_accept_merges_with_other_runtimes_keeps_keywords_and_header_and_replaces_its_own(dirs, capsys):
    dirs.golden.mkdir()
    path = dirs.golden / f"{MODEL}.yaml"
    path.write_text("# My model's golden answers: keep this note.\nmodel: my-qwen2-vl-2b\nruntimes:\n"
                    "  1.1.2:\n    text:\n      en-capital: Paris, old runtime.\n"
                    "keywords:\n  red-circle.png: [circle]\n", encoding="utf-8")
    first = good_run(dirs.results, dirs.golden)
    assert hil("golden", "accept", first.run_id, "--results", dirs.results, "--golden-dir", dirs.golden) == 0
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["runtimes"]["1.1.2"] == {"text": {"en-capital": "Paris, old runtime."}}
    assert data["keywords"] == {"red-circle.png": ["circle"]}
    assert set(data["runtimes"]) == {"1.1.2", RUNTIME}
    assert path.read_text(encoding="utf-8").startswith("# My model's golden answers: keep this note.\n")
    capsys.readouterr()

    second = good_run(dirs.results, dirs.golden, text={**TEXT, "en-capital": "Paris."})
    assert hil("golden", "accept", second.folder.path, "--golden-dir", dirs.golden) == 0
    assert f"replaced the answers of {first.run_id} (1 differed or are gone)" in capsys.readouterr().out
    loaded = GoldenAnswers.load(MODEL, RUNTIME, dirs.golden)
    assert loaded.text("en-capital") == "Paris." and loaded.recorded_from["run"] == second.run_id
    assert GoldenAnswers.load(MODEL, "1.1.2", dirs.golden).text("en-capital") == "Paris, old runtime."


def test_accept_warns_about_prompts_the_run_gave_no_answer_for(dirs, capsys):
    run = good_run(dirs.results, dirs.golden, image={})
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 0
    err = capsys.readouterr().err
    assert f"warning: run {run.run_id} gave no answer for red-circle.png demo-menu-0" in err
    assert GoldenAnswers.load(MODEL, RUNTIME, dirs.golden).picture("red-circle.png") is None


@pytest.mark.parametrize("failed", ["tests/test_text_inference.py::test_text_answer[en-npu]",
                                    "tests/test_multimodal.py::test_picture_answers[house.png]"])
def test_accept_refuses_a_run_whose_answer_tests_failed(dirs, capsys, failed):
    run = good_run(dirs.results, dirs.golden, fail=failed)
    assert hil("golden", "accept", run.run_id, "--results", dirs.results, "--golden-dir", dirs.golden) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run {run.run_id} is refused: its answer tests failed (board {BOARD}: {failed} "
                          f"failed: AssertionError")
    assert "keywords: section" in err and err.count("\n") == 1
    assert not (dirs.golden / f"{MODEL}.yaml").exists()


def test_accept_refuses_an_answer_test_that_failed_before_it_recorded_its_answer(dirs, capsys):
    run = SuiteRun(dirs.results)
    answer_tests(run)
    run.test("tests/test_text_inference.py::test_text_answer[en-extra]", "failed",
             message="Failed: not run, configuration check failed")
    run.finish()
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 2
    assert "test_text_answer[en-extra] failed: Failed: not run" in capsys.readouterr().err


def test_accept_refuses_a_run_without_answers(dirs, capsys):
    run = SuiteRun(dirs.results)
    run.test("tests/test_boot.py::test_boots_to_shell", provenance=provenance())
    run.test("tests/test_text_inference.py::test_text_answer[en-capital]", "skipped", message="the board did not boot")
    run.finish()
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 2
    assert f"error: run {run.run_id} recorded no answers" in capsys.readouterr().err
    assert not dirs.golden.exists()


def test_accept_refuses_boards_that_disagree_unless_one_is_chosen(dirs, capsys):
    run = SuiteRun(dirs.results)
    answer_tests(run, board="twin-1")
    answer_tests(run, board="twin-2", text={**TEXT, "en-arith": "12 times 12 is 145."})
    run.finish()
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 2
    err = capsys.readouterr().err
    assert "its boards answered differently (en-arith)" in err and "--board B" in err
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden, "--board", "twin-1") == 0
    loaded = GoldenAnswers.load(MODEL, RUNTIME, dirs.golden)
    assert loaded.text("en-arith") == TEXT["en-arith"] and loaded.recorded_from["board"] == "twin-1"


def test_accept_files_each_board_under_its_own_model_and_runtime(dirs, capsys):
    run = SuiteRun(dirs.results)
    answer_tests(run, board="twin-1")
    answer_tests(run, board="twin-2", runtime="1.2.2")
    run.finish()
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 0
    assert GoldenAnswers.load(MODEL, "1.2.1", dirs.golden).recorded_from["board"] == "twin-1"
    assert GoldenAnswers.load(MODEL, "1.2.2", dirs.golden).recorded_from["board"] == "twin-2"


# --- hil golden show ----------------------------------------------------------------------------------

def test_show_lists_models_runtimes_counts_and_where_they_came_from(dirs, capsys):
    run = good_run(dirs.results, dirs.golden)
    assert hil("golden", "accept", run.folder.path, "--golden-dir", dirs.golden) == 0
    (dirs.golden / "other-model.yaml").write_text("model: other-model\nruntimes:\n  '1.2':\n    text: {en-capital: "
                                                  "Paris.}\nkeywords:\n  en-npu: [NPU]\n", encoding="utf-8")
    capsys.readouterr()
    assert hil("golden", "show", "--golden-dir", dirs.golden) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "RUNTIME", "TEXT", "PICTURES", "(ANSWERS)", "OWN", "KEYWORDS",
                                "RECORDED", "FROM"]
    mine = next(line for line in lines if line.startswith(MODEL))
    assert mine.split()[:6] == [MODEL, RUNTIME, str(len(TEXT)), str(len(PICTURES)), f"({2 * len(PICTURES)})", "-"]
    assert f"run {run.run_id}, board {BOARD}, {run.folder.info()['started'][:16].replace('T', ' ')}" in mine
    other = next(line for line in lines if line.startswith("other-model"))
    assert other.split() == ["other-model", "1.2", "1", "0", "(0)", "1", "-"]
    assert hil("golden", "show", "other-model", "--golden-dir", dirs.golden) == 0
    assert MODEL not in capsys.readouterr().out


def test_show_of_a_model_without_answers_says_how_to_record_them(dirs, capsys):
    assert hil("golden", "show", "nobody", "--golden-dir", dirs.golden) == 0
    assert capsys.readouterr().out.startswith(f"no golden answers recorded for nobody in {dirs.golden}: record a "
                                              f"checked run's with `hil golden accept RUN`")


def test_show_names_a_broken_golden_file_and_its_line(dirs, capsys):
    dirs.golden.mkdir()
    (dirs.golden / "broken.yaml").write_text("model: broken\nruntimes:\n  1.2.1: [\n", encoding="utf-8")
    (dirs.golden / "fine.yaml").write_text("runtimes:\n  1.2.1:\n    text: {en-capital: Paris.}\n", encoding="utf-8")
    assert hil("golden", "show", "--golden-dir", dirs.golden) == 2
    captured = capsys.readouterr()
    assert "fine" in captured.out
    assert captured.err.startswith(f"error: {dirs.golden / 'broken.yaml'} line 4, column 1: not valid YAML")


def test_hil_golden_show_runs_as_a_command(dirs):
    good = dirs.golden / f"{MODEL}.yaml"
    good.parent.mkdir()
    good.write_text(f"model: {MODEL}\nruntimes:\n  1.2.1:\n    text: {{en-capital: Paris.}}\n"
                    "    recorded_from: {run: 20261201-100000-abcd, board: rk3576-01, date: '2026-12-01T10:00:00'}\n",
                    encoding="utf-8")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "hil"), "golden", "show", "--golden-dir", str(dirs.golden)],
                          capture_output=True, text=True, timeout=60, cwd=dirs.golden.parent)
    assert proc.returncode == 0, proc.stderr
    assert "run 20261201-100000-abcd, board rk3576-01, 2026-12-01 10:00" in proc.stdout
    assert proc.stdout.splitlines()[1].split()[:4] == [MODEL, "1.2.1", "1", "0"]


# --- the suite reads it -----------------------------------------------------------------------------------

def test_load_takes_the_directory_and_reads_runtime_keys_as_text(tmp_path):
    (tmp_path / "m.yaml").write_text("model: m\nruntimes:\n  1.2:\n    text: {en-capital: Paris.}\n", encoding="utf-8")
    for directory in (tmp_path, str(tmp_path)):
        loaded = GoldenAnswers.load("m", "1.2", directory)
        assert loaded.text("en-capital") == "Paris." and loaded.path == tmp_path / "m.yaml"
    assert not GoldenAnswers.load("m", "1.3", tmp_path).recorded
    assert not GoldenAnswers.load("absent", "1.2", tmp_path).recorded
    assert GoldenAnswers.load("absent", "1.2").directory == GOLDEN_DIR


@pytest.mark.parametrize("text, problem", [
    ("- a list\n", "a golden file is a YAML mapping"),
    ("runtimes:\n  1.2.1: [x]\n", "runtimes.1.2.1 must be a mapping"),
    ("runtimes:\n  1.2.1:\n    image: {cat.png: a cat}\n", "runtimes.1.2.1.image.cat.png must map prompt ids"),
    ("keywords:\n  en-capital: Paris\n", "keywords.en-capital must be a list of words"),
    ("keywords:\n  cat.png: {demo-menu-0: cat}\n", "keywords.cat.png must be a list of words"),
])
def test_a_golden_file_of_the_wrong_shape_is_named_with_its_key(tmp_path, text, problem):
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(GoldenError, match="m.yaml: " + problem.replace(".", r"\.")):
        GoldenAnswers.load("m", "1.2.1", tmp_path)


def test_the_models_own_keywords_replace_the_defaults(tmp_path):
    (tmp_path / "m.yaml").write_text("keywords:\n  en-npu: [accelerator]\n  red-circle.png: [circle]\n"
                                     "  house.png: {demo-menu-1: [房子]}\n", encoding="utf-8")
    loaded = GoldenAnswers.load("m", "1.2.1", tmp_path)
    text = {p.id: p for p in prompts.text_prompts()}
    english, chinese = prompts.image_prompts()
    manifest = {p["file"]: p for p in pictures.load()}
    assert loaded.keywords(text["en-npu"]) == ("accelerator",)
    assert loaded.keywords(text["en-capital"]) == ("Paris",)  # no override: prompts.yaml's
    assert loaded.keywords(english, manifest["red-circle.png"]) == ("circle",)
    assert loaded.keywords(chinese, manifest["red-circle.png"]) == tuple(manifest["red-circle.png"]["keywords_zh"])
    assert loaded.keywords(chinese, manifest["house.png"]) == ("房子",)
    assert loaded.keywords(english, manifest["house.png"]) == tuple(manifest["house.png"]["keywords"])
    assert prompts.missing_keywords("A big circle on white.", loaded.keywords(english, manifest["red-circle.png"])) \
        == []
    # the shipped golden files have none: every check keeps its default keywords
    for path in GOLDEN_DIR.glob("*.yaml"):
        shipped = GoldenAnswers.load(path.stem, RUNTIME)
        assert shipped.keywords(english, manifest["cat.png"]) == tuple(manifest["cat.png"]["keywords"])


def test_a_check_without_answers_says_how_to_record_them_and_is_marked(tmp_path):
    here = GoldenAnswers.load(MODEL, RUNTIME)
    message = here.not_recorded("en-capital", "20261201-100000-abcd")
    assert message.startswith(f"no golden answer recorded for en-capital of {MODEL} on runtime {RUNTIME} "
                              f"({GOLDEN_DIR / MODEL}.yaml): once this run's answers are checked on a good board")
    assert message.endswith("record them with `hil golden accept 20261201-100000-abcd`")
    elsewhere = GoldenAnswers.load(MODEL, RUNTIME, tmp_path / "golden")
    assert elsewhere.accept_command("r1", results_dir=tmp_path / "runs") == \
        f"hil golden accept r1 --results {tmp_path / 'runs'} --golden-dir {tmp_path / 'golden'}"
    assert elsewhere.accept_command(None, results_dir="results") == f"hil golden accept RUN --golden-dir " \
                                                                    f"{tmp_path / 'golden'}"
    assert dict(here.not_recorded_properties("r1")) == {
        "golden": "not recorded", "golden.model": MODEL, "golden.runtime": RUNTIME,
        "golden.accept": "hil golden accept r1"}


# --- the summary and the report: no golden is no pass -------------------------------------------------------

def test_the_recorder_counts_the_golden_checks_that_did_not_run(dirs):
    run = good_run(dirs.results, dirs.golden)
    (missing,) = run.recorder.golden_not_run()
    assert (missing.board, missing.model, missing.runtime, missing.count) == (BOARD, MODEL, RUNTIME,
                                                                              len(TEXT_IDS) + len(PICTURES))
    assert missing.describe() == f"no golden answers for {MODEL} on runtime {RUNTIME}: " \
                                 f"{len(TEXT_IDS) + len(PICTURES)} golden checks not run"
    assert missing.accept == f"hil golden accept {run.run_id} --golden-dir {dirs.golden}"
    # a skip for another cause (the board did not boot) is not counted
    other = SuiteRun(dirs.results)
    other.test("tests/test_text_inference.py::test_text_golden[en-capital]", "skipped", message="did not boot")
    assert other.recorder.golden_not_run() == []


def test_the_report_shows_no_golden_per_board_and_model(dirs):
    run = good_run(dirs.results, dirs.golden)
    context = html.context(run.folder)
    (board,) = context["boards"]
    assert board.verdict == html.PASS and [m.model for m in board.no_golden] == [MODEL]
    page = html.render(run.folder)
    n = len(TEXT_IDS) + len(PICTURES)
    assert f"{BOARD} PASS (no golden)</title>" in page
    assert '<span class="badge no-golden">NO GOLDEN</span>' in page
    assert f'<li data-model="{MODEL}" data-runtime="{RUNTIME}">no golden answers for {MODEL} on runtime ' \
           f'{RUNTIME}: {n} golden checks not run' in page
    assert f"({n} of them golden checks with no answer to compare with)" in page
    assert f"<code>hil golden accept {run.run_id} --golden-dir {dirs.golden}</code>" in page


def test_the_report_of_a_run_with_golden_answers_shows_no_badge(dirs):
    run = SuiteRun(dirs.results)
    answer_tests(run)
    run.test("tests/test_text_inference.py::test_text_golden[en-capital]")
    run.test("tests/test_text_inference.py::test_text_golden[en-npu]", "skipped", message="the board did not boot")
    page = html.render(run.finish().folder)
    assert "NO GOLDEN" not in page and "(no golden)" not in page and 'class="no-golden"' not in page


def test_a_golden_file_written_by_accept_reads_back_as_written(dirs):
    """Round trip of what accept writes: long lines wrapped by YAML, runtimes as text, nothing lost."""
    file = GoldenFile(dirs.golden / "m.yaml")
    file.put("1.10", {"text": {"en-npu": "word " * 60}, "image": {}, "recorded_from": {"run": "r"}})
    file.write()
    again = GoldenFile.read(dirs.golden / "m.yaml")
    assert again.runtimes()["1.10"]["text"]["en-npu"] == "word " * 60 and again.model == "m"
