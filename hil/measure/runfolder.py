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

A truncated last line (the process died while writing it, possibly inside a multibyte
character) is skipped on reading, and so is a line of a type this version does not know. Bytes
that are not UTF-8 anywhere else mean the file is not what the suite wrote: reading it raises
``RunFolderError`` naming the file and the byte offset.
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
        """The run folder at ``path``: the folder itself, or its ``run.json`` or ``results.jsonl``."""
        path = Path(path)
        if path.is_file():
            if path.name in (RUN_FILE, RESULTS_FILE):
                path = path.parent
            else:
                raise RunFolderError(f"{path} is {_file_kind(path)}, not a run's result folder: pass the run folder, "
                                     f"its {RUN_FILE} or its {RESULTS_FILE}")
        folder = cls(path)
        if not (folder.path / RUN_FILE).is_file() and not (folder.path / RESULTS_FILE).is_file():
            raise RunFolderError(f"{path} is not a run's result folder: it has neither {RUN_FILE} nor {RESULTS_FILE}")
        return folder

    # writing -----------------------------------------------------------------------------
    def write_info(self, info: dict) -> None:
        _write_atomic(self.path / RUN_FILE, redact.dumps(info, indent=2, default=str) + "\n")

    def update_info(self, **changes) -> dict:
        info = {**self.info(), **changes}
        self.write_info(info)
        return info

    def append(self, record) -> None:
        """Append one record (a ``hil.measure.records`` type, or its dict), secrets masked, and
        force it to disk before returning."""
        data = record.to_dict() if hasattr(record, "to_dict") else record
        line = redact.dumps(data, default=str, ensure_ascii=False) + "\n"
        with open(self.path / RESULTS_FILE, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    # reading -----------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.info().get("run_id") or self.path.name

    def info(self, *, strict: bool = False) -> dict:
        """The content of ``run.json``; ``{"run_id": <folder name>}`` when it is missing or, unless
        ``strict``, unreadable. ``strict`` raises ``RunFolderError`` for a ``run.json`` that is not
        UTF-8 JSON (naming the file and, for bytes that are not UTF-8, their offset)."""
        path = self.path / RUN_FILE
        try:
            data = path.read_bytes()
        except OSError:
            return {"run_id": self.path.name}
        try:
            info = json.loads(_decode(data, path))
            if not isinstance(info, dict):
                raise RunFolderError(f"{path} holds JSON that is not an object: it is not a run's {RUN_FILE}")
            return info
        except RunFolderError:
            if strict:
                raise
        except ValueError as e:
            if strict:
                raise RunFolderError(f"{path} is not valid JSON ({e}): it is not a run's {RUN_FILE}") from None
        return {"run_id": self.path.name}

    def records(self, kind: type | None = None) -> list:
        """The records of ``results.jsonl`` in order (``hil.measure.records`` types), only those
        of class ``kind`` when it is given.

        The file is read a line at a time. A last line without its newline (the one being
        written when the run died, possibly cut inside a multibyte character) is skipped, and
        so is a line that is not JSON; bytes that are not UTF-8 in any other line raise
        ``RunFolderError`` naming the file and the byte offset.
        """
        out = []
        path = self.path / RESULTS_FILE
        try:
            f = open(path, "rb")
        except OSError:
            return out
        with f:
            offset = 0
            for raw in f:
                start, offset = offset, offset + len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if not raw.endswith(b"\n") and _cut_inside_a_character(raw, e):
                        continue  # the line being written when the run died, cut mid-character
                    raise RunFolderError(_not_utf8(path, start + e.start, raw[e.start:e.end])) from None
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


def _not_utf8(path: Path, offset: int, bad: bytes) -> str:
    return (f"{path} is not UTF-8 text: byte {offset} (0x{bad[:1].hex()}) is not valid UTF-8; "
            f"the suite writes UTF-8 JSON, so this file is damaged or is not a run's")


def _decode(data: bytes, path: Path) -> str:
    """``data`` as UTF-8, or ``RunFolderError`` naming ``path`` and the offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RunFolderError(_not_utf8(path, e.start, data[e.start:e.end])) from None


def _cut_inside_a_character(raw: bytes, error: UnicodeDecodeError) -> bool:
    """Whether the only bad bytes of ``raw`` are the start of a character cut off at its end."""
    return error.reason == "unexpected end of data" and error.end == len(raw)


def _file_kind(path: Path) -> str:
    """A short description of a file that is not a run folder: binary (with the offset of the
    first byte that is not UTF-8) or a text file."""
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError as e:
        return f"a file that cannot be read ({e.strerror or e})"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if not (e.reason == "unexpected end of data" and len(head) == 64 * 1024):
            return f"a binary file (byte {e.start}, 0x{head[e.start:e.start + 1].hex()}, is not UTF-8)"
    nul = head.find(b"\0")
    if nul >= 0:
        return f"a binary file (byte {nul} is NUL)"
    return "a file"
