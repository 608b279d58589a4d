"""The labgrid environment file, read once for what the suite needs beside labgrid's drivers.

labgrid builds the drivers from the env; the suite also needs the board's id and type, its
place, the deploy and models folders, the bench settings and the coordinator. This module
reads the file with labgrid's own YAML loader (so ``!template`` is what labgrid makes of it)
and answers those questions; nothing else parses an env file.
"""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

import attr
import yaml
from labgrid.util import yaml as labgrid_yaml

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default (labgrid/resource/remote.py)
DEFAULT_BOARD = "rk3576"
DEFAULT_DEPLOY_DIR = "/userdata/rk3576-hil"


class EnvError(ValueError):
    """An environment file that cannot be read; the message names the file and, for YAML, the line."""


@attr.s(frozen=True)
class LabEnv:
    """One environment file's ``targets: main:`` as the suite reads it."""

    path = attr.ib(converter=lambda p: Path(p).resolve())
    data = attr.ib(repr=False, factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabEnv":
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise EnvError(f"cannot read the environment {path}: {e.strerror or e}") from None
        try:
            data = labgrid_yaml.load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise EnvError(f"{path}{where}: not valid YAML ({problem})") from None
        if not isinstance(data, dict):
            raise EnvError(f"{path}: an environment is a YAML mapping with 'targets:', not {type(data).__name__}")
        return cls(path=path, data=data)

    @property
    def main(self) -> dict:
        main = (self.data.get("targets") or {}).get("main") if isinstance(self.data.get("targets"), dict) else None
        return main if isinstance(main, dict) else {}

    @property
    def target_options(self) -> dict:
        options = self.main.get("options") or {}
        return options if isinstance(options, dict) else {}

    @property
    def driver_names(self) -> list[str]:
        """The main target's drivers as written (labgrid takes a mapping or a list of mappings)."""
        drivers = self.main.get("drivers") or {}
        items = drivers if isinstance(drivers, list) else [drivers]
        return [name for item in items if isinstance(item, dict) for name in item]

    @property
    def place(self) -> str | Template | None:
        """The main target's RemotePlace name as written: a str, a ``!template`` or None."""
        resources = self.main.get("resources") or {}
        remote = resources.get("RemotePlace") if isinstance(resources, dict) else None
        return (remote or {}).get("name") if isinstance(remote, dict) else None

    @property
    def is_farm(self) -> bool:
        """The place comes from ``$LG_PLACE`` (``!template '$LG_PLACE'``): one place per worker."""
        return isinstance(self.place, Template) and "LG_PLACE" in self.place.template

    @property
    def fixed_place(self) -> str | None:
        return self.place if isinstance(self.place, str) else None

    @property
    def twin_bench(self) -> dict | None:
        """The virtual bench this env runs against (``twin_bench:`` target option), or None."""
        return self.target_options.get("twin_bench")

    @property
    def board_type(self) -> str:
        """The kind of board, for the limits (target option ``board``)."""
        return str(self.target_options.get("board") or DEFAULT_BOARD)

    @property
    def deploy_dir(self) -> str:
        return str(self.target_options.get("deploy_dir") or DEFAULT_DEPLOY_DIR)

    def local_path(self, option: str) -> Path | None:
        """A target option naming a host file or folder (``models_dir``, ``demo_dir``, ``llm``,
        ``vision``, ``golden_dir``): ``~`` expanded, relative to the env file's folder."""
        value = self.target_options.get(option)
        if not value:
            return None
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else self.path.parent / path

    @property
    def models_dir(self) -> Path | None:
        return self.local_path("models_dir")

    def coordinator(self, override: str | None = None) -> str:
        """Where places live, in labgrid's order: --lg-coordinator, the env's option, LG_COORDINATOR."""
        if override:
            return override
        value = (self.data.get("options") or {}).get("coordinator_address")
        if isinstance(value, Template):
            value = value.safe_substitute(os.environ)
        return str(value) if value else os.environ.get("LG_COORDINATOR", DEFAULT_COORDINATOR)

    def board_id(self, place: str | None = None) -> str:
        """The board a process drives: its place (given, ``$LG_PLACE``, the env's), else the board type."""
        return place or os.environ.get("LG_PLACE") or self.fixed_place or self.board_type
