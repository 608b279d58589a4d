"""``hil report RUN_DIR``: rebuild a run's HTML report from its result folder."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from hil.measure.runfolder import RunFolder, RunFolderError


def add_commands(subparsers) -> None:
    """Add ``report`` to the ``hil`` command's subparsers."""
    p = subparsers.add_parser(
        "report", help="rebuild a run's HTML qualification report",
        description="Render RUN_DIR/report.html (one self-contained file) from the run's result folder. "
                    "Trend charts use a history database, opened read-only: --history, else the one the run "
                    "wrote when run.json names it by an absolute path that exists (a relative path there is "
                    "relative to where the run was made, not to this folder, so it is not used).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's result folder (holds run.json and results.jsonl)")
    p.add_argument("--history", metavar="PATH", default=None,
                   help="history database (SQLite) for the trend charts")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="where to write the report (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hil.measure.report.html import ReportError, build  # matplotlib: only when a report is built

    db = None
    try:
        folder = RunFolder.open(args.run_dir)
        history = Path(args.history) if args.history is not None else default_history(folder)
        if history is not None and history.is_file():
            db = open_readonly(history)  # a missing file: build() names it
        path = build(folder.path, history=db if db is not None else history, out=args.out)
    except (RunFolderError, ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if db is not None:
            db.close()
    print(path)
    return 0


def open_readonly(path: Path):
    """The history database at ``path`` opened for reading only (a report never writes to it)."""
    from hil.measure.report.html import ReportError

    try:
        history = importlib.import_module("hil.measure.history")
    except ModuleNotFoundError as e:
        if e.name != "hil.measure.history":
            raise
        raise ReportError(f"cannot read the history database {path}: this installation has no "
                          "hil.measure.history module; build the report without history") from e
    try:
        return history.HistoryDB(path, readonly=True)
    except history.HistoryError as e:
        raise ReportError(f"cannot read the history database: {e}") from e


def default_history(folder: RunFolder) -> Path | None:
    """The history database to chart when none is named (``--history``): the one the run wrote,
    when ``run.json`` names it by an absolute path that exists; None otherwise.

    A relative path in ``run.json`` is relative to the directory the run was started in, which
    a report of a copied or moved folder cannot know: it is not opened (a note says so), and
    neither is a default database under the current directory or ``$HIL_HISTORY``.
    """
    recorded = folder.info().get("history")
    if not recorded:
        return None
    path = Path(str(recorded))
    if not path.is_absolute():
        print(f"note: run.json names the history {recorded} relative to where the run was started, "
              f"so it is not used; pass --history PATH for its trend charts", file=sys.stderr)
        return None
    return path if path.is_file() else None
