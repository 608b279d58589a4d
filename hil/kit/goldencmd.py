"""``hil golden``: record a checked run's answers as a model's golden answers, and list them.

Golden answers ship only for the twin's models; a user's own model has none until a run of
it on a good board, its answers read and found right, is accepted: ``hil golden accept RUN``
writes that run's answers (per model and runtime, from the run's provenance) into the golden
file the suite reads, with the run and board they came from. A run whose answer tests failed
is refused: a wrong answer must never become the reference the next boards are held to.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from hil.kit import golden
from hil.kit.golden import GOLDEN_DIR, GoldenError, GoldenFile
from hil.measure.history import HISTORY_ENV, HistoryDB, HistoryError
from hil.measure.historycmd import table
from hil.measure.runfolder import RunFolder, RunFolderError, now_iso


def _errors_exit_2(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A run or file the command cannot use is the user's to fix: its message and exit 2, no traceback."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (GoldenError, HistoryError, RunFolderError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


def history_path(option: str | None, results: Path) -> Path | None:
    """As the suite finds it: ``--history``, else ``$HIL_HISTORY``, else ``RESULTS/history.sqlite``."""
    value = option or os.environ.get(HISTORY_ENV)
    if value and value.lower() == "none":
        return None
    return Path(value) if value else results / "history.sqlite"


def find_run(spec: str, results: Path, history: Path | None) -> RunFolder:
    """The run folder ``spec`` names: a folder (or its run.json / results.jsonl), a run id of the
    history (its recorded folder), or a run id under ``results``."""
    path = Path(spec)
    if path.exists():
        return RunFolder.open(path)
    if history is not None and history.is_file():
        with HistoryDB(history, readonly=True) as db:
            known = db.has_run(spec)
            run_dir = next((r["run_dir"] for r in db.runs(limit=None) if r["run_id"] == spec and r["run_dir"]),
                           None) if known else None
        if run_dir and Path(run_dir).is_dir():
            return RunFolder.open(run_dir)
        if known and not (results / spec).is_dir():
            where = f"its folder {run_dir} is gone" if run_dir else "it names no run folder"
            raise GoldenError(f"run {spec} is in the history {history} but {where}: the answers are only in the "
                              f"run folder's results.jsonl; pass that folder")
    if (results / spec).is_dir():
        return RunFolder.open(results / spec)
    where = f"in the history {history}" if history is not None and history.is_file() else "in a history (none found)"
    raise GoldenError(f"run {spec!r} is neither a run folder, a run {where}, nor a folder under {results}: "
                      f"`hil history` lists runs; or pass the run folder, or --results DIR / --history PATH")


def _model_and_runtime(provenance: dict, board: str, run_id: str) -> tuple[str, str]:
    model, runtime = provenance.get("model"), provenance.get("rkllm_runtime")
    if isinstance(model, dict):
        model = model.get("name")
    if not model or not runtime:
        missing = " and ".join(k for k, v in (("model", model), ("rkllm_runtime", runtime)) if not v)
        raise GoldenError(f"run {run_id} recorded no {missing} for board {board or '-'}: its answers cannot be "
                          f"filed under a model and runtime; accept a run that deployed a model")
    return str(model), str(runtime)


def _merge(into: dict, answers: dict, where: str, conflicts: list) -> None:
    for key, answer in answers.items():
        if isinstance(answer, dict):
            _merge(into.setdefault(key, {}), answer, f"{where}{key} ", conflicts)
        elif key in into and golden.normalize(into[key]) != golden.normalize(answer):
            conflicts.append(f"{where}{key}")
        else:
            into.setdefault(key, answer)


def _changed(former: dict, entry: dict) -> int:
    """How many answers the former entry had that the new one gives differently or not at all."""
    old = {("text", k): v for k, v in (former.get("text") or {}).items()}
    old.update({(p, k): v for p, a in (former.get("image") or {}).items() for k, v in (a or {}).items()})
    new = {("text", k): v for k, v in entry["text"].items()}
    new.update({(p, k): v for p, a in entry["image"].items() for k, v in a.items()})
    return sum(1 for key, v in old.items() if key not in new or golden.normalize(str(v)) != golden.normalize(new[key]))


def _missing(entry: dict) -> list[str]:
    """The prompts and pictures of the suite the run gave no answer for (their checks will still skip)."""
    from hil.kit import pictures, prompts  # pillow: only when a run is accepted

    out = [p.id for p in prompts.text_prompts() if p.id not in entry["text"]]
    image_ids = [p.id for p in prompts.image_prompts()]
    for picture in pictures.load():
        given = entry["image"].get(picture["file"]) or {}
        out += [f"{picture['file']} {i}" for i in image_ids if i not in given]
    return out


@_errors_exit_2
def cmd_accept(args) -> int:
    results = Path(args.results)
    folder = find_run(args.run, results, history_path(args.history, results))
    info = folder.info(strict=True)
    run_id = info.get("run_id") or folder.path.name
    provenance = folder.provenance()
    tests = folder.tests()
    by_board = golden.answers_of(tests)
    vision_found, vision_failed = golden.vision_answers_of(tests)
    if args.board is not None:
        boards = set(by_board) | {v.board for v in vision_found}
        if args.board not in boards:
            raise GoldenError(f"run {run_id} has no answers of board {args.board!r} (boards with answers: "
                              f"{', '.join(sorted(b or '-' for b in boards)) or 'none'})")
        by_board = {args.board: by_board[args.board]} if args.board in by_board else {}
        vision_found = [v for v in vision_found if v.board == args.board]
    failed = [f"board {b.board or '-'}: {f}" for b in by_board.values() for f in b.failed] + vision_failed
    if failed:
        raise GoldenError(
            f"run {run_id} is refused: its answer tests failed ({'; '.join(failed)}); a wrong answer must not "
            f"become the reference. Fix the model or the board and run again; if the answers are right and only "
            f"the default keywords do not fit this model, give its own in the keywords: section of its golden "
            f"file ({args.golden_dir}/MODEL.yaml), run again and accept that run")
    if not any(b.count for b in by_board.values()) and not any(v.count for v in vision_found):
        raise GoldenError(f"run {run_id} recorded no answers ({folder.path}): accept a run whose text, picture "
                          f"or vision answer tests ran and passed")
    groups: dict[tuple[str, str], dict] = {}
    conflicts: list[str] = []
    for board in sorted(by_board.values(), key=lambda b: b.board):
        if not board.count:
            continue
        prov = provenance.get(board.board, {})
        key = _model_and_runtime(prov, board.board, run_id)
        group = groups.setdefault(key, {"text": {}, "image": {}, "boards": [], "sha": prov.get("model_sha256")})
        _merge(group["text"], board.text, "", conflicts)
        _merge(group["image"], board.image, "", conflicts)
        group["boards"].append(board.board)
    if conflicts:
        raise GoldenError(f"run {run_id}: its boards answered differently ({', '.join(conflicts[:5])}"
                          f"{' ...' if len(conflicts) > 5 else ''}) although greedy decoding of one model and "
                          f"runtime must agree; a board is suspect: accept one board's answers with --board B")
    for (model, runtime), group in groups.items():
        recorded_from = {"run": run_id, "board": ", ".join(b or "-" for b in group["boards"]),
                         "date": info.get("started"), "accepted": now_iso()}
        if group["sha"]:
            recorded_from["model_sha256"] = group["sha"]
        entry = {"text": group["text"], "image": group["image"], "recorded_from": recorded_from}
        file = GoldenFile.read(golden.path_of(model, args.golden_dir))
        former = file.put(runtime, entry)
        file.write()
        n_image = sum(len(a) for a in entry["image"].values())
        print(f"golden answers of {model} on runtime {runtime}: {len(entry['text'])} text, {n_image} about "
              f"{len(entry['image'])} pictures, from run {run_id} on board {recorded_from['board']} -> {file.path}")
        if former:
            changed = _changed(former, entry)
            was = (former.get("recorded_from") or {}).get("run") or "an earlier reference"
            print(f"  replaced the answers of {was}" + (f" ({changed} differed or are gone)" if changed else ""))
        missing = _missing(entry)
        if missing:
            print(f"warning: run {run_id} gave no answer for {', '.join(missing)}: their golden checks still skip",
                  file=sys.stderr)
    _accept_vision(vision_found, run_id, info, args.golden_dir)
    if not info.get("finished"):
        print(f"warning: run {run_id} did not finish; only the answers it recorded were taken", file=sys.stderr)
    return 0


def _accept_vision(found: list[golden.VisionAnswers], run_id: str, info: dict, golden_dir) -> None:
    """File each vision model's answers under its librknnrt version, as the LLMs' are filed."""
    groups: dict[tuple[str, str], dict] = {}
    conflicts = []
    for answers in sorted(found, key=lambda a: a.board):
        if not answers.count:
            continue
        group = groups.setdefault((answers.model, answers.runtime), {"classes": {}, "detections": {}, "boards": []})
        for kind in ("classes", "detections"):
            for picture, value in getattr(answers, kind).items():
                if picture in group[kind] and group[kind][picture] != value:
                    conflicts.append(f"{answers.model} {picture}")
                group[kind].setdefault(picture, value)
        group["boards"].append(answers.board)
    if conflicts:
        raise GoldenError(f"run {run_id}: its boards gave different vision answers ({', '.join(conflicts[:5])}); "
                          f"a board is suspect: accept one board's answers with --board B")
    for (model, runtime), group in groups.items():
        recorded_from = {"run": run_id, "board": ", ".join(b or "-" for b in group["boards"]),
                         "date": info.get("started"), "accepted": now_iso()}
        entry = {kind: group[kind] for kind in ("classes", "detections") if group[kind]}
        file = GoldenFile.read(golden.path_of(model, golden_dir))
        former = file.put(runtime, {**entry, "recorded_from": recorded_from})
        file.write()
        counts = ", ".join(f"{kind} of {len(v)} pictures" for kind, v in entry.items())
        print(f"golden answers of {model} on librknnrt {runtime}: {counts}, from run {run_id} on board "
              f"{recorded_from['board']} -> {file.path}")
        if former:
            was = (former.get("recorded_from") or {}).get("run") or "an earlier reference"
            print(f"  replaced the answers of {was}")


def _date(iso) -> str:
    return str(iso)[:16].replace("T", " ") if iso else "-"


@_errors_exit_2
def cmd_show(args) -> int:
    directory = Path(args.golden_dir)
    paths = [golden.path_of(args.model, directory)] if args.model else sorted(directory.glob("*.yaml"))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        what = f"for {args.model} " if args.model else ""
        print(f"no golden answers recorded {what}in {directory}: record a checked run's with "
              f"`hil golden accept RUN` (`hil history` lists runs)")
        return 0
    rows, errors = [], []
    for path in paths:
        try:
            file = GoldenFile.read(path)
        except GoldenError as e:
            errors.append(str(e))
            continue
        own = str(len(file.keywords)) if file.keywords else "-"
        runtimes = file.runtimes() or {"-": {}}
        for runtime, entry in runtimes.items():
            image = entry.get("image") or {}
            # a vision model's answers: one per picture (a Top-5, or the boxes on it)
            image = image or {p: {"answer": a} for kind in ("classes", "detections")
                              for p, a in (entry.get(kind) or {}).items()}
            source = entry.get("recorded_from") or {}
            origin = (f"run {source.get('run', '?')}, board {source.get('board') or '-'}, {_date(source.get('date'))}"
                      if source else "-")
            rows.append([file.model, runtime, str(len(entry.get("text") or {})),
                         f"{len(image)} ({sum(len(a or {}) for a in image.values())})", own, origin])
    if rows:
        print(table(["MODEL", "RUNTIME", "TEXT", "PICTURES (ANSWERS)", "OWN KEYWORDS", "RECORDED FROM"], rows))
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 2 if errors else 0


def add_commands(subparsers) -> None:
    """Add ``golden`` to the ``hil`` command's subparsers."""
    g = subparsers.add_parser("golden", help="the golden answers the answer checks compare with")
    gsub = g.add_subparsers(dest="golden_command", required=True)
    a = gsub.add_parser("accept", help="record a checked run's answers as its model's golden answers",
                        description="Write the answers of RUN (checked by you on a good board) into the golden "
                                    "file of each model it ran, under the runtime it ran, with the run and board "
                                    "they came from; other runtimes' answers stay. A run whose answer tests "
                                    "failed, or that has no answers, is refused (exit 2).")
    a.add_argument("run", metavar="RUN", help="a run id (of the history, or a folder under --results), or a run "
                                              "folder / its results.jsonl")
    a.add_argument("--golden-dir", metavar="DIR", default=GOLDEN_DIR, help=f"where golden files are (default "
                                                                            f"{GOLDEN_DIR})")
    a.add_argument("--results", metavar="DIR", default=golden.DEFAULT_RESULTS,
                   help=f"folder of run folders (default {golden.DEFAULT_RESULTS})")
    a.add_argument("--history", metavar="PATH", default=None,
                   help=f"history DB to find RUN in (default: ${HISTORY_ENV}, else DIR/history.sqlite under "
                        "--results)")
    a.add_argument("--board", default=None, help="only this board's answers (a run of several boards)")
    a.set_defaults(func=cmd_accept)
    s = gsub.add_parser("show", help="the golden answers recorded, per model and runtime")
    s.add_argument("model", metavar="MODEL", nargs="?", default=None, help="only this model")
    s.add_argument("--golden-dir", metavar="DIR", default=GOLDEN_DIR,
                   help=f"where golden files are (default {GOLDEN_DIR})")
    s.set_defaults(func=cmd_show)
