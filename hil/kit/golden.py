"""Golden answers: what a reference run answered, per model and runtime.

Greedy decoding (the demos set ``top_k = 1``) makes an answer a function of model, runtime
and prompt, so ``<golden dir>/<model>.yaml`` (default ``images/golden``) keeps the answer a
reference run gave for each runtime; a different answer on a board under test is a finding,
even when the keywords are still there. One ``GoldenAnswers`` is read per run and asked by
every check.

A model nobody has recorded answers for (a user's own model) has nothing to compare with:
its golden checks skip with how to record them, and carry the ``golden`` property
(``not recorded``) so that the terminal summary and the report count them as checks that did
not run, never as passes. ``hil golden accept RUN`` records a checked run's answers: the
answer tests write each as the property ``answer.<prompt id>`` (and ``picture``), which
``answers_of`` reads back from the run's records, so writer and reader live here together.

The file may also hold the model's own ``keywords:`` (prompt id -> words; picture file ->
words, or prompt id -> words): the default keywords suit the twin's answers about drawn
shapes, and a real model may rightly say "a circle" where they want "red".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attr
import yaml

from hil.paths import IMAGES_DIR

GOLDEN_DIR = IMAGES_DIR / "golden"
ANSWER = "answer"  # property ``answer.<prompt id>``: the answer an answer test got
PICTURE = "picture"  # property: the picture an answer test asked about
MARK = "golden"  # property of a golden check that had nothing to compare with: NOT_RECORDED
NOT_RECORDED = "not recorded"
ANSWER_TESTS = ("test_text_answer", "test_picture_answers")  # their failure makes a run's answers unfit
FAILED_OUTCOMES = ("failed", "error")
DEFAULT_RESULTS = "results"  # the suite's and ``hil golden accept``'s default --results
HEADER = ("# Greedy answers of {model}, recorded from a reference run per runtime (the demos set top_k = 1,\n"
          "# so model + runtime + prompt fix the answer). A different answer on a board under test is a finding.\n"
          "# Written by `hil golden accept RUN`; `keywords:` (optional, by hand) replaces the default keywords\n"
          "# of a prompt id, or of a picture (a list: its English question's; or prompt id -> list).\n")
VISION_HEADER = ("# Answers of {model} about the test pictures (images/pictures), recorded from a reference run\n"
                 "# per librknnrt version: an RKNN model's output is fixed by model, runtime and picture. A changed\n"
                 "# class, a top-1 score more than the tolerance away or a lost box on a board under test is a finding.\n"
                 "# Written by `hil golden accept RUN`.\n")


class GoldenError(ValueError):
    """A golden file or a run that cannot give golden answers; the message names it and the fix."""


def normalize(answer: str) -> str:
    """Answers compare with runs of white space folded (line wrapping is not a change)."""
    return " ".join(answer.split())


def path_of(model: str, directory: Path | str | None = None) -> Path:
    return Path(directory if directory is not None else GOLDEN_DIR) / f"{model}.yaml"


# --- the file -------------------------------------------------------------------------------

def _words(value) -> bool:
    return isinstance(value, list) and all(isinstance(w, (str, int, float)) and not isinstance(w, bool)
                                           for w in value)


def _check(path: Path, data) -> dict:
    """The file's content, or a ``GoldenError`` naming the key whose shape is wrong."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GoldenError(f"{path}: a golden file is a YAML mapping (model, runtimes, keywords), "
                          f"not {type(data).__name__}")
    runtimes = data.get("runtimes") or {}
    if not isinstance(runtimes, dict):
        raise GoldenError(f"{path}: runtimes must map a runtime version to its answers")
    for runtime, entry in runtimes.items():
        if entry is not None and not isinstance(entry, dict):
            raise GoldenError(f"{path}: runtimes.{runtime} must be a mapping (text, image, classes, detections, "
                              f"recorded_from)")
        for kind in ("text", "image", "classes", "detections"):
            found = (entry or {}).get(kind)
            if found is not None and not isinstance(found, dict):
                raise GoldenError(f"{path}: runtimes.{runtime}.{kind} must be a mapping, not {type(found).__name__}")
        for picture, answers in ((entry or {}).get("image") or {}).items():
            if not isinstance(answers, dict):
                raise GoldenError(f"{path}: runtimes.{runtime}.image.{picture} must map prompt ids to answers")
    keywords = data.get("keywords") or {}
    if not isinstance(keywords, dict):
        raise GoldenError(f"{path}: keywords must map a prompt id or a picture file to a list of words")
    for key, value in keywords.items():
        if _words(value) or isinstance(value, dict) and all(_words(v) for v in value.values()):
            continue
        raise GoldenError(f"{path}: keywords.{key} must be a list of words (or, for a picture, a mapping of "
                          f"prompt id to a list of words), got {value!r}")
    return data


@attr.s
class GoldenFile:
    """One model's golden file as a whole: what ``hil golden`` reads, merges and writes."""

    path = attr.ib(converter=Path)
    data = attr.ib(factory=dict)
    header = attr.ib(default="")  # the comment lines above the YAML, kept when the file is rewritten

    @classmethod
    def read(cls, path: Path | str) -> "GoldenFile":
        """The file at ``path`` (empty when there is none); ``GoldenError`` for one that is not a golden file."""
        path = Path(path)
        if not path.is_file():
            return cls(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise GoldenError(f"{path} is not UTF-8 text (byte {e.start}): it is not a golden file") from None
        except OSError as e:
            raise GoldenError(f"cannot read {path}: {e.strerror or e}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise GoldenError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
        header = "".join(line for line in _leading_comments(text))
        return cls(path, _check(path, data), header)

    @property
    def model(self) -> str:
        return str(self.data.get("model") or self.path.stem)

    def runtimes(self) -> dict[str, dict]:
        """Answers by runtime; keys as text (YAML reads an unquoted ``1.2`` as a number)."""
        return {str(k): v or {} for k, v in (self.data.get("runtimes") or {}).items()}

    @property
    def keywords(self) -> dict:
        return dict(self.data.get("keywords") or {})

    def put(self, runtime: str, entry: dict) -> dict:
        """Make ``entry`` the answers of ``runtime`` (a new reference run replaces the former one's
        whole, so one ``recorded_from`` covers them all); returns the former entry ({} if none)."""
        runtimes = self.runtimes()
        former = runtimes.get(str(runtime)) or {}
        runtimes[str(runtime)] = entry
        self.data = {"model": self.model, **{k: v for k, v in self.data.items() if k != "model"},
                     "runtimes": runtimes}
        return former

    def write(self) -> None:
        """Rewrite the file (atomically), its leading comment kept, or a standard one for a new file."""
        vision = any(e.get("classes") or e.get("detections") for e in self.runtimes().values())
        header = self.header or (VISION_HEADER if vision else HEADER).format(model=self.model)
        text = header + yaml.safe_dump(self.data, allow_unicode=True, sort_keys=False, width=110)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def _leading_comments(text: str):
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            return
        yield line if line.endswith("\n") else line + "\n"


# --- what the checks ask ----------------------------------------------------------------------

@attr.s(frozen=True)
class GoldenAnswers:
    """The recorded answers of one model on one runtime (empty when none are recorded), and the
    model's own keywords."""

    model = attr.ib()
    runtime = attr.ib()
    answers = attr.ib(factory=dict, repr=False)  # {"text": {prompt id: answer}, "image": {picture: {id: answer}}}
    own_keywords = attr.ib(factory=dict, repr=False)  # the file's keywords: section
    directory = attr.ib(default=GOLDEN_DIR, converter=Path)

    @classmethod
    def load(cls, model: str, runtime: str, directory: Path | str | None = None) -> "GoldenAnswers":
        """``model``'s answers on ``runtime`` from ``directory`` (default ``images/golden``);
        ``GoldenError`` names a file that is not a golden file."""
        directory = Path(directory) if directory is not None else GOLDEN_DIR
        found = GoldenFile.read(path_of(model, directory))
        return cls(model=model, runtime=str(runtime), answers=found.runtimes().get(str(runtime)) or {},
                   own_keywords=found.keywords, directory=directory)

    @property
    def path(self) -> Path:
        return path_of(self.model, self.directory)

    @property
    def recorded(self) -> bool:
        return any(self.answers.get(kind) for kind in ("text", "image", "classes", "detections"))

    @property
    def recorded_from(self) -> dict:
        return self.answers.get("recorded_from") or {}

    def text(self, prompt_id: str) -> str | None:
        return (self.answers.get("text") or {}).get(prompt_id)

    def picture(self, picture: str) -> dict | None:
        """``{prompt id: answer}`` for one picture, or None."""
        return (self.answers.get("image") or {}).get(picture)

    def image(self, picture: str, prompt_id: str) -> str | None:
        return (self.picture(picture) or {}).get(prompt_id)

    def classes(self, picture: str) -> dict | None:
        """A classifier's recorded answer about ``picture``: ``{"top5": [class, ...], "top1_score": s}``."""
        return (self.answers.get("classes") or {}).get(picture)

    def detections(self, picture: str) -> list | None:
        """A detector's recorded boxes on ``picture``: ``[{"label", "box": [l, t, r, b], "score"}]``."""
        return (self.answers.get("detections") or {}).get(picture)

    @staticmethod
    def differs(answer: str, golden: str | None) -> bool:
        """A recorded answer that the given one is not (None: nothing to compare with)."""
        return golden is not None and normalize(answer) != normalize(golden)

    def keywords(self, prompt, picture: dict | None = None) -> tuple:
        """The words an answer to ``prompt`` (about ``picture``, a manifest entry) must hold: the
        model's own from its ``keywords:``, else the defaults (``images/prompts.yaml`` for a text
        prompt, the picture manifest's ``keywords_from`` list for a picture's).

        A picture's own list replaces the manifest's ``keywords`` (the English question's); a
        mapping gives a list per prompt id (``demo-menu-1`` for the Chinese question).
        """
        if picture is None:
            own = self.own_keywords.get(prompt.id)
            return tuple(own) if own is not None else tuple(prompt.keywords)
        own = self.own_keywords.get(picture["file"])
        if isinstance(own, dict):
            own = own.get(prompt.id)
        elif own is not None and prompt.keywords_from != "keywords":
            own = None
        return tuple(own) if own is not None else tuple(picture.get(prompt.keywords_from) or ())

    # a check with nothing to compare with --------------------------------------------------
    def accept_command(self, run_id: str | None = None, results_dir: Path | str | None = None) -> str:
        """The command that records this run's answers where this run reads them."""
        command = f"hil golden accept {run_id or 'RUN'}"
        if results_dir is not None and Path(results_dir) != Path(DEFAULT_RESULTS):
            command += f" --results {results_dir}"
        if self.directory.resolve() != GOLDEN_DIR.resolve():
            command += f" --golden-dir {self.directory}"
        return command

    def not_recorded(self, what: str, run_id: str | None = None, results_dir: Path | str | None = None) -> str:
        """Why a golden check of ``what`` (a prompt id, a picture) cannot run, and how to record the answers."""
        return (f"no golden answer recorded for {what} of {self.model} on runtime {self.runtime} ({self.path}): "
                f"once this run's answers are checked on a good board, record them with "
                f"`{self.accept_command(run_id, results_dir)}`")

    def not_recorded_properties(self, run_id: str | None = None,
                                results_dir: Path | str | None = None) -> list[tuple[str, str]]:
        """The properties that mark a golden check as not run (``not_run`` counts them)."""
        return [(MARK, NOT_RECORDED), (f"{MARK}.model", self.model), (f"{MARK}.runtime", self.runtime),
                (f"{MARK}.accept", self.accept_command(run_id, results_dir))]


# --- what a run's records say -----------------------------------------------------------------

@attr.s(frozen=True)
class NotRun:
    """The golden checks of one board, model and runtime that had no answer to compare with."""

    board = attr.ib()
    model = attr.ib()
    runtime = attr.ib()
    count = attr.ib()
    accept = attr.ib(default=None)  # the command that records the run's answers

    def describe(self) -> str:
        return (f"no golden answers for {self.model} on runtime {self.runtime}: {self.count} golden "
                f"check{'' if self.count == 1 else 's'} not run")


def not_run(tests) -> list[NotRun]:
    """Golden checks that skipped for want of recorded answers (records marked ``golden: not
    recorded``), counted per board, model and runtime in the order first seen."""
    found: dict[tuple, list] = {}
    for t in tests:
        props = t.properties if isinstance(t.properties, dict) else {}
        if t.outcome == "skipped" and props.get(MARK) == NOT_RECORDED:
            key = (t.board or "", str(props.get(f"{MARK}.model") or "?"), str(props.get(f"{MARK}.runtime") or "?"))
            entry = found.setdefault(key, [0, props.get(f"{MARK}.accept")])
            entry[0] += 1
    return [NotRun(*key, count=n, accept=accept) for key, (n, accept) in found.items()]


@attr.s
class BoardAnswers:
    """What the answer tests of one board recorded in a run."""

    board = attr.ib()
    text = attr.ib(factory=dict)  # prompt id -> answer
    image = attr.ib(factory=dict)  # picture -> prompt id -> answer
    failed = attr.ib(factory=list)  # "test: outcome: message" of answer tests that failed

    @property
    def count(self) -> int:
        return len(self.text) + sum(len(a) for a in self.image.values())


def _function(test_id: str) -> str:
    return test_id.rpartition("::")[2].partition("[")[0]


def _param(test_id: str) -> str:
    return test_id.partition("[")[2].removesuffix("]")


def answers_of(tests) -> dict[str, BoardAnswers]:
    """The answers a run's records hold, by board, with its answer tests that failed.

    Every ``answer.<prompt id>`` property is an answer, about ``picture`` when the test says
    so. Runs written before the properties named the prompt recorded a text answer as
    ``answer`` and a picture only in the test's parameter: read from the test id.
    """
    out: dict[str, BoardAnswers] = {}
    for t in tests:
        props = t.properties if isinstance(t.properties, dict) else {}
        function = _function(t.test_id)
        answers = {k.removeprefix(f"{ANSWER}."): v for k, v in props.items() if k.startswith(f"{ANSWER}.")}
        if ANSWER in props:
            answers[_param(t.test_id)] = props[ANSWER]
        if not answers and function not in ANSWER_TESTS:
            continue
        board = out.setdefault(t.board or "", BoardAnswers(t.board or ""))
        if t.outcome in FAILED_OUTCOMES:
            board.failed.append(f"{t.test_id} {t.outcome}: {_first_line(t.message) or 'no message'}")
            continue
        if t.outcome != "passed":
            continue
        picture = props.get(PICTURE) or (_param(t.test_id) if function == "test_picture_answers" else None)
        for prompt_id, answer in answers.items():
            if picture:
                board.image.setdefault(str(picture), {})[prompt_id] = str(answer)
            else:
                board.text[prompt_id] = str(answer)
    return out


VISION_MODEL = "vision.model"  # properties of a vision answer test: the model and librknnrt it ran
VISION_RUNTIME = "vision.runtime"
CLASSES = "classes"  # ``classes.<picture>``: {"top5": [...], "top1_score": s} as JSON
DETECTIONS = "detections"  # ``detections.<picture>``: [{"label", "box", "score"}] as JSON
VISION_ANSWER_TESTS = ("test_vision_answers",)


@attr.s
class VisionAnswers:
    """What one vision answer test recorded: the answers of one model on one board and runtime."""

    board = attr.ib()
    model = attr.ib()
    runtime = attr.ib()
    classes = attr.ib(factory=dict)  # picture -> {"top5", "top1_score"}
    detections = attr.ib(factory=dict)  # picture -> [{"label", "box", "score"}]

    @property
    def count(self) -> int:
        return len(self.classes) + len(self.detections)


def vision_answers_of(tests) -> tuple[list[VisionAnswers], list[str]]:
    """The vision answers a run's records hold (passed tests only), and its vision answer tests
    that failed (``test outcome: message``)."""
    found, failed = [], []
    for t in tests:
        props = t.properties if isinstance(t.properties, dict) else {}
        if _function(t.test_id) not in VISION_ANSWER_TESTS:
            continue
        if t.outcome in FAILED_OUTCOMES:
            failed.append(f"{t.test_id} {t.outcome}: {_first_line(t.message) or 'no message'}")
            continue
        if t.outcome != "passed" or not props.get(VISION_MODEL):
            continue
        answers = VisionAnswers(t.board or "", str(props[VISION_MODEL]), str(props.get(VISION_RUNTIME) or "?"))
        for key, value in props.items():
            kind, _, picture = str(key).partition(".")
            if kind in (CLASSES, DETECTIONS) and picture:
                getattr(answers, kind)[picture] = json.loads(value) if isinstance(value, str) else value
        found.append(answers)
    return found, failed


def _first_line(text) -> str:
    return str(text).strip().splitlines()[0][:200] if text and str(text).strip() else ""
