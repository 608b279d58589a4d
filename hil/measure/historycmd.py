"""``hil history`` and ``hil baseline``: past runs with their trend, and the accepted baselines.

``hil history`` lists runs newest first, one line per run and board, with the median of a
few headline figures and how each moved since the previous run of the same board and
model, so a slow drift shows even when no single run failed. ``hil baseline accept RUN``
makes a run the baseline its board, model and runtime are compared with from then on
(``--baseline auto``).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from hil.measure.compare import format_number
from hil.measure.history import (DEFAULT_HISTORY, HISTORY_ENV, HistoryDB, HistoryError, default_history_path,
                                 read_run_folder)
from hil.measure.runfolder import RunFolderError

DEFAULT_FIGURES = ("boot_to_shell_s", "text_decode_tokens_per_s")


def _db_help() -> str:
    return f"history DB (default: ${HISTORY_ENV}, else {DEFAULT_HISTORY})"


def _open_existing(path: str | None) -> HistoryDB:
    """The history for reading: a missing file is a wrong path or no run yet, not a new empty DB."""
    db_path = Path(path) if path else default_history_path()
    if not db_path.is_file():
        raise HistoryError(f"no history DB at {db_path}: runs of the suite record into it; pass --db PATH or set "
                           f"{HISTORY_ENV} to the one they wrote")
    return HistoryDB(db_path)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _date(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def _with_trend(db: HistoryDB, rows: list[dict], figures: list[str], board, model) -> dict:
    """{(run_id, board): {figure: cell}}: each median and its change since the previous run
    of the same board and model (rows are newest first and cover the whole history)."""
    cells: dict = {}
    for name in figures:
        medians = {(p.run_id, p.board): p.median for p in db.trend(name, board=board, model=model, limit=None)}
        previous: dict = {}
        for row in reversed(rows):
            key = (row["run_id"], row["board"])
            value = medians.get(key)
            if value is None:
                cells.setdefault(key, {})[name] = "-"
                continue
            before = previous.get((row["board"], row["model"]))
            text = format_number(value)
            if before:
                text += f" ({100.0 * (value - before) / abs(before):+.1f} %)"
            cells.setdefault(key, {})[name] = text
            previous[(row["board"], row["model"])] = value
    return cells


def _history_errors_exit_2(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A ``HistoryError`` (no DB there, unknown run) or a ``RunFolderError`` (a damaged run
    folder) is the user's to fix: its message and exit status 2, not a traceback."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (HistoryError, RunFolderError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


@_history_errors_exit_2
def cmd_history(args) -> int:
    if args.limit is not None and args.limit < 0:
        print(f"error: --limit {args.limit}: give the number of entries to show, or 0 for all", file=sys.stderr)
        return 2
    with _open_existing(args.db) as db:
        rows = db.runs(board=args.board, model=args.model, limit=None)
        if not rows:
            only = " matching" + "".join(f" {k} {v}" for k, v in (("board", args.board), ("model", args.model))
                                         if v) if args.board or args.model else ""
            print(f"no runs{only} recorded in {db.path}")
            return 0
        figures = list(args.figure or DEFAULT_FIGURES)
        cells = _with_trend(db, rows, figures, args.board, args.model)
        baselines = {b["run_id"] for b in db.baselines()}
        shown = rows[: args.limit] if args.limit else rows
        out = []
        for row in shown:
            key = (row["run_id"], row["board"])
            run = row["run_id"] + (" *" if row["run_id"] in baselines else "")
            out.append([run, _date(row["started"]), row["board"] or "-", row["image"] or "-",
                        row["runtime"] or "-", row["model"] or "-", row["verdict"],
                        *(cells.get(key, {}).get(name, "-") for name in figures)])
        print(table(["RUN", "STARTED", "BOARD", "IMAGE", "RUNTIME", "MODEL", "VERDICT", *figures], out))
        notes = []
        if len(shown) < len(rows):
            notes.append(f"{len(shown)} of {len(rows)} entries (--limit)")
        if baselines & {r["run_id"] for r in shown}:
            notes.append("* accepted baseline")
        notes.append("(+x %) = change of the median since the previous run of the same board and model")
        print("\n".join(notes))
        return 0


@_history_errors_exit_2
def cmd_baseline_accept(args) -> int:
    path = Path(args.run)
    db_path = Path(args.db) if args.db else default_history_path()
    # a folder (or its run.json / results.jsonl) is read and checked before the history is
    # opened, so a damaged one leaves no trace in it, not even a new empty DB
    folder = read_run_folder(path)[0] if path.exists() else None
    with (HistoryDB(db_path) if folder is not None else _open_existing(args.db)) as db:
        if folder is not None:
            run_id = db.import_run(folder)
        else:
            run_id = args.run
        keys = db.accept_baseline(run_id)
        bad = [r for r in db.runs(limit=None) if r["run_id"] == run_id and r["verdict"] != "passed"]
        for r in bad:
            print(f"warning: run {run_id} is {r['verdict']} on board {r['board'] or '-'}; its figures are the "
                  f"baseline all the same", file=sys.stderr)
        for board, model, runtime in keys:
            print(f"baseline of board {board or '-'}, model {model or '-'}, runtime {runtime or '-'}: run {run_id}")
        return 0


@_history_errors_exit_2
def cmd_baseline_show(args) -> int:
    with _open_existing(args.db) as db:
        rows = db.baselines()
        if not rows:
            print(f"no baseline accepted in {db.path}: accept a run with `hil baseline accept RUN` "
                  f"(`hil history` lists runs)")
            return 0
        print(table(["BOARD", "MODEL", "RUNTIME", "RUN", "RUN STARTED", "ACCEPTED"],
                    [[r["board"] or "-", r["model"] or "-", r["runtime"] or "-", r["run_id"],
                      _date(r["started"]), _date(r["accepted"])] for r in rows]))
        return 0


def add_commands(subparsers) -> None:
    """Add ``history`` and ``baseline`` to the ``hil`` command's subparsers."""
    h = subparsers.add_parser("history", help="past runs with their verdicts and the trend of headline figures")
    h.add_argument("--db", default=None, help=_db_help())
    h.add_argument("--board", default=None, help="only this board")
    h.add_argument("--model", default=None, help="only this model")
    h.add_argument("--figure", action="extend", nargs="+", default=None, metavar="NAME",
                   help=f"figures to show (default: {', '.join(DEFAULT_FIGURES)})")
    h.add_argument("--limit", type=int, default=50, help="newest entries to show (0 = all; default 50)")
    h.set_defaults(func=cmd_history)

    b = subparsers.add_parser("baseline", help="the runs figures are compared with (--baseline auto)")
    bsub = b.add_subparsers(dest="baseline_command", required=True)
    a = bsub.add_parser("accept", help="make a run the baseline of its board, model and runtime")
    a.add_argument("run", metavar="RUN", help="run id in the history, or a run folder (imported first)")
    a.add_argument("--db", default=None, help=_db_help())
    a.set_defaults(func=cmd_baseline_accept)
    s = bsub.add_parser("show", help="the accepted baselines")
    s.add_argument("--db", default=None, help=_db_help())
    s.set_defaults(func=cmd_baseline_show)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry, for use before ``hil`` wires these commands in."""
    parser = argparse.ArgumentParser(prog="hil")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
