"""A long test's steps on disk as they happen: one JSON line per cycle or soak window in
``<results>/<run id>/endurance/<test>-<board>.jsonl``.

Figures are written when a test ends; a soak killed after six hours (Ctrl-C, a CI timeout, a
lost lab) would otherwise lose everything it measured. Each line is flushed and synced before
the next step starts, so what a killed run finished is in its run folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

FOLDER = "endurance"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_path(results_dir: Path | str, run_id: str, test: str, board: str) -> Path:
    """Where the steps of ``test`` (a node id or name) on ``board`` go."""
    name = _UNSAFE.sub("_", f"{test.rpartition('::')[2]}-{board}").strip("_")
    return Path(results_dir) / run_id / FOLDER / f"{name}.jsonl"


class EnduranceLog:
    """Appends steps to ``path``; ``read`` gives them back."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, step: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(step, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict]:
        """The complete lines (a line cut by a kill is left out)."""
        if not self.path.exists():
            return []
        steps = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                steps.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return steps
