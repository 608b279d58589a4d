"""Limits for every figure the suite gates on, from YAML keyed by board, model and runtime.

Limits never live in test code. ``limits/rk3576.yaml`` holds the defaults, derived from
the published RK3576 figures (rknn-llm benchmark and multimodal tables); ``--limits FILE``
adds entries that override them. A file is a list of entries; each entry has a ``match``
(``board``, ``model``, ``runtime``, each a glob, absent = any) and figures with ``min``
and/or ``max``, a ``unit``, and optionally the ``published`` figure it came from. Entries
are applied in order, so later and user entries win, figure by figure.

A value inside its limits but within the marginal band next to a bound is *marginal*
(it passes, and the report flags it), as in OpenHTF. The band is ``marginal_min`` /
``marginal_max`` when given, else ``marginal_pct`` (default 5 %) inside each bound.
``tolerance_pct`` (default 3 %) is how large a statistically significant change from the
baseline must be to fail the test as a regression; ``better`` (higher/lower) says which
way the figure improves when its limit does not (a lone lower bound means higher).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import attr
import yaml

from hil.paths import REPO

DEFAULT_FILE = REPO / "limits" / "rk3576.yaml"
MATCH_KEYS = ("board", "model", "runtime")
NUMBER_KEYS = ("min", "max", "published", "marginal_min", "marginal_max", "marginal_pct", "tolerance_pct")
SPEC_KEYS = ("unit", "better", *NUMBER_KEYS)
DEFAULT_MARGINAL_PCT = 5.0
DEFAULT_TOLERANCE_PCT = 3.0


class LimitsError(ValueError):
    """A limits file that cannot be used; the message names the file and the entry."""


@attr.s(frozen=True)
class Limit:
    name = attr.ib()
    unit = attr.ib(default="")
    min = attr.ib(default=None)
    max = attr.ib(default=None)
    published = attr.ib(default=None)
    source = attr.ib(default="")  # the file (and entry) this limit came from
    marginal_min = attr.ib(default=None)
    marginal_max = attr.ib(default=None)
    marginal_pct = attr.ib(default=DEFAULT_MARGINAL_PCT)
    tolerance_pct = attr.ib(default=DEFAULT_TOLERANCE_PCT)
    better = attr.ib(default=None)

    def __attrs_post_init__(self) -> None:
        band = self.marginal_pct / 100.0
        if self.marginal_min is None and self.min is not None:
            object.__setattr__(self, "marginal_min", self.min + abs(self.min) * band)
        if self.marginal_max is None and self.max is not None:
            object.__setattr__(self, "marginal_max", self.max - abs(self.max) * band)

    def verdict(self, value: float) -> tuple[str, str | None]:
        """``("pass"|"marginal"|"fail", why)`` for ``value``."""
        broken = self.violation(value)
        if broken:
            return "fail", broken
        if self.marginal_min is not None and value < self.marginal_min:
            return "marginal", (f"{self.name} = {value:g} {self.unit} is within the marginal band above its "
                                f"lower limit {self.min:g} {self.unit}")
        if self.marginal_max is not None and value > self.marginal_max:
            return "marginal", (f"{self.name} = {value:g} {self.unit} is within the marginal band below its "
                                f"upper limit {self.max:g} {self.unit}")
        return "pass", None

    def violation(self, value: float) -> str | None:
        """Why ``value`` breaks this limit, or None."""
        if self.min is not None and value < self.min:
            return f"{self.name} = {value:g} {self.unit} is below its lower limit {self.min:g} {self.unit}"
        if self.max is not None and value > self.max:
            return f"{self.name} = {value:g} {self.unit} is above its upper limit {self.max:g} {self.unit}"
        return None

    def describe(self) -> str:
        bounds = [f">= {self.min:g}" if self.min is not None else "", f"<= {self.max:g}" if self.max is not None else ""]
        text = " and ".join(b for b in bounds if b) + f" {self.unit}".rstrip()
        if self.published is not None:
            text += f" (published {self.published:g})"
        return f"{text} [{self.source}]"


def _read(path: Path) -> list[dict]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise LimitsError(f"cannot read limits file {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise LimitsError(f"limits file {path} is not valid YAML: {e}") from e
    entries = (data or {}).get("limits") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LimitsError(f"limits file {path}: expected a top-level 'limits:' list of entries")
    for i, entry in enumerate(entries):
        where = f"{path}, entry {i + 1}"
        if not isinstance(entry, dict):
            raise LimitsError(f"{where}: an entry is a mapping of match + figures")
        unknown = set(entry.get("match") or {}) - set(MATCH_KEYS)
        if unknown:
            raise LimitsError(f"{where}: unknown match keys {sorted(unknown)} (use {', '.join(MATCH_KEYS)})")
        for name, spec in entry.items():
            if name == "match":
                continue
            if not isinstance(spec, dict) or not ({"min", "max"} & set(spec)):
                raise LimitsError(f"{where}: figure {name!r} needs 'min' and/or 'max'")
            unknown = set(spec) - set(SPEC_KEYS)
            if unknown:
                raise LimitsError(f"{where}: figure {name!r} has unknown keys {sorted(unknown)} "
                                  f"(use {', '.join(SPEC_KEYS)})")
            for key in NUMBER_KEYS:
                if spec.get(key) is not None and not isinstance(spec[key], (int, float)):
                    raise LimitsError(f"{where}: {name}.{key} must be a number, got {spec[key]!r}")
            if spec.get("better") not in (None, "higher", "lower"):
                raise LimitsError(f"{where}: {name}.better must be 'higher' or 'lower', got {spec['better']!r}")
    return entries


@attr.s
class Limits:
    """The merged entries of the default file and any override files."""

    entries = attr.ib(factory=list)  # (source, entry)

    @classmethod
    def load(cls, *overrides: Path | str, default: Path = DEFAULT_FILE) -> "Limits":
        entries = []
        for path in (default, *overrides):
            for i, entry in enumerate(_read(Path(path))):
                entries.append((f"{Path(path).name}#{i + 1}", entry))
        return cls(entries)

    def select(self, *, board: str = "", model: str = "", runtime: str = "") -> dict[str, Limit]:
        """Every figure's limit for this board, model and runtime (later entries win)."""
        keys = {"board": board, "model": model, "runtime": runtime}
        specs: dict[str, dict] = {}
        for source, entry in self.entries:
            match = entry.get("match") or {}
            if not all(fnmatch.fnmatchcase(keys[k], str(pattern)) for k, pattern in match.items()):
                continue
            for name, spec in entry.items():
                if name != "match":
                    specs.setdefault(name, {}).update({k: spec[k] for k in SPEC_KEYS if k in spec}, source=source)
        return {name: Limit(name=name, **spec) for name, spec in specs.items()}
