"""A run's result folder: what the suite writes as it goes, and reads back for reports.

Layout of ``<results>/<run id>/``:

``run.json``
    Written when the run starts and rewritten (atomically) when it ends: ``run_id``,
    ``started``, ``finished`` (null while running or when the run died), ``exitstatus``,
    ``argv``, ``options`` (image, model, repeat, baseline, limits files), ``history`` (the
    SQLite file the run also wrote to).
``results.jsonl``
    One JSON object per line, appended and flushed to disk as each record is known, so a
    run killed at any point keeps every test it had finished. ``type`` says what a line is;
    each type is a record class of ``hil.measure.records``, which defines its fields for the
    writer and every reader (``provenance``: ``ProvenanceRecord``, later lines for the same
    board adding to earlier ones; ``test``: ``TestRecord`` with its ``FigureRecord``s;
    ``lab_fault``: ``LabFaultRecord``).
``report.html``
    The qualification report (``hil report RUN_DIR`` rebuilds it).

A truncated last line (the process died while writing it) is skipped on reading, and so is a
line of a type this version does not know.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
from pathlib import Path

import attr

from hil.measure.records import ProvenanceRecord, TestRecord, from_dict
from hil.suite.redact import redact

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.html"


class RunFolderError(ValueError):
    """A folder that is not a run's result folder; the message says what is missing."""


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def new_run_id(when: _dt.datetime | None = None) -> str:
    when = when or _dt.datetime.now()
    return when.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@attr.s
class RunFolder:
    """Writer and reader of one run's folder."""

    path = attr.ib(converter=Path)

    @classmethod
    def create(cls, results_dir: Path | str, run_id: str | None = None, **info) -> "RunFolder":
        """A new run folder under ``results_dir``, its ``run.json`` written, ``latest`` pointing at it."""
        run_id = run_id or new_run_id()
        folder = cls(Path(results_dir) / run_id)
        folder.path.mkdir(parents=True, exist_ok=False)
        folder.write_info({"run_id": run_id, "started": now_iso(), "finished": None, "exitstatus": None, **info})
        (folder.path / RESULTS_FILE).touch()
        latest = Path(results_dir) / "latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(run_id)
        except OSError:
            pass  # a convenience only (e.g. a file system without symlinks)
        return folder

    @classmethod
    def open(cls, path: Path | str) -> "RunFolder":
        folder = cls(Path(path))
        if not (folder.path / RUN_FILE).is_file() and not (folder.path / RESULTS_FILE).is_file():
            raise RunFolderError(f"{path} is not a run's result folder: it has neither {RUN_FILE} nor {RESULTS_FILE}")
        return folder

    # writing -----------------------------------------------------------------------------
    def write_info(self, info: dict) -> None:
        _write_atomic(self.path / RUN_FILE, redact(json.dumps(info, indent=2, default=str)) + "\n")

    def update_info(self, **changes) -> dict:
        info = {**self.info(), **changes}
        self.write_info(info)
        return info

    def append(self, record) -> None:
        """Append one record (a ``hil.measure.records`` type, or its dict), secrets masked, and
        force it to disk before returning."""
        data = record.to_dict() if hasattr(record, "to_dict") else record
        line = redact(json.dumps(data, default=str, ensure_ascii=False)) + "\n"
        with open(self.path / RESULTS_FILE, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    # reading -----------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.info().get("run_id") or self.path.name

    def info(self) -> dict:
        try:
            return json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"run_id": self.path.name}

    def records(self, kind: type | None = None) -> list:
        """The records of ``results.jsonl`` in order (``hil.measure.records`` types), only those
        of class ``kind`` when it is given."""
        out = []
        try:
            lines = (self.path / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                record = from_dict(json.loads(line))
            except ValueError:
                continue  # the line being written when the run died
            if record is not None and (kind is None or isinstance(record, kind)):
                out.append(record)
        return out

    def tests(self) -> list[TestRecord]:
        return self.records(TestRecord)

    def provenance(self) -> dict[str, dict]:
        """Provenance data by board, later records adding to earlier ones."""
        out: dict[str, dict] = {}
        for record in self.records(ProvenanceRecord):
            out.setdefault(record.board or "", {}).update(record.data or {})
        return out
