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
                    "Trend charts use the history database: --history, else the one the run wrote, "
                    "else the default one, when it exists.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's result folder (holds run.json and results.jsonl)")
    p.add_argument("--history", metavar="PATH", default=None,
                   help="history database (SQLite) for the trend charts")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="where to write the report (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hil.measure.report.html import ReportError, build  # matplotlib: only when a report is built

    try:
        folder = RunFolder.open(args.run_dir)
        history = args.history if args.history is not None else default_history(folder)
        path = build(folder.path, history=history, out=args.out)
    except (RunFolderError, ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def default_history(folder: RunFolder) -> Path | None:
    """The history database to chart when none is named: the run's own, else the default one.

    None when neither file exists, or when this installation has no history support.
    """
    recorded = folder.info().get("history")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    try:
        history = importlib.import_module("hil.measure.history")
    except ModuleNotFoundError as e:
        if e.name != "hil.measure.history":
            raise
        return None
    path = Path(history.default_history_path())
    return path if path.is_file() else None
