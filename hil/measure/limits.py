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

Files are checked when loaded, each problem a ``LimitsError`` naming the file, the entry and
the field: numbers are finite numbers (not ``.nan``, ``.inf`` or ``true``), ``min <= max``,
marginal bounds lie between them, percentages are not negative. The figures the default file
defines are the ones the suite gates; with ``UNGATED_FIGURES`` (measured, no default limit)
they are the only names an override file may use, so a misspelt figure is an error that
names the closest known one rather than a limit that silently gates nothing. Bounds that
contradict each other only once entries are merged are an error of ``Limits.select``.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
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
# Figures the suite measures and checks by name (``.within(model_limits)``) without a default
# limit: an override file may gate them. Every other name must be one the default file defines.
UNGATED_FIGURES = frozenset({
    "flash_and_boot_s",         # tests/test_boot.py: only when the run flashed
    "deploy_throughput_mib_s",  # tests/test_deploy.py: depends on the lab's network
    # tests/test_vision.py: drawn per model from its published FPS and its file
    # (hil.suite.config.vision_defaults), which an override file may replace
    "rknn_fps",
    "rknn_latency_ms",
    "rknn_weight_mib",
    "rknn_core_scaling",        # recorded: how much a second core adds differs per model
    # tests/test_endurance.py: the lower bound and p95 are gated; these say how they came about
    "power_cycle_success_pct", "power_cycle_ready_s", "power_cycle_ready_p50_s", "power_cycle_ready_max_s",
    "reboot_success_pct", "reboot_ready_s", "reboot_ready_p50_s", "reboot_ready_max_s",
    # tests/test_soak.py: the gated low end of the growth and the drift come with these
    "soak_turns", "soak_decode_slope_tps_per_h", "soak_rss_growth_mib_per_h", "soak_throttle_onset_s",
    "power_cut_unsynced_files_lost",  # what a page cache loses in a cut: reported, not a fault
})


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # YAML true is a bool, bool an int


def _bound_problems(spec: dict, origin=None) -> list[str]:
    """What is inconsistent between the bounds of one figure's ``spec`` (None = absent).

    ``origin`` maps each key of a merged spec to the entry it came from; a merged spec is
    complete, so a marginal bound without its limit is a problem only there (an entry may
    move the band of a bound an earlier entry set)."""
    def field(key):
        return f"{key} {spec[key]:g}" + (f" ({origin[key]})" if origin and key in origin else "")

    def given(*keys):
        return all(spec.get(k) is not None for k in keys)

    problems = []
    if given("min", "max") and spec["min"] > spec["max"]:
        problems.append(f"{field('min')} is above {field('max')}")
    for key in ("marginal_min", "marginal_max"):
        if not given(key):
            continue
        if origin is not None and key == "marginal_min" and not given("min"):
            problems.append(f"{field(key)} has no 'min' to mark the band above")
        if origin is not None and key == "marginal_max" and not given("max"):
            problems.append(f"{field(key)} has no 'max' to mark the band below")
        if given("min") and spec[key] < spec["min"]:
            problems.append(f"{field(key)} is below {field('min')}")
        if given("max") and spec[key] > spec["max"]:
            problems.append(f"{field(key)} is above {field('max')}")
    if given("marginal_min", "marginal_max") and spec["marginal_min"] > spec["marginal_max"]:
        problems.append(f"{field('marginal_min')} is above {field('marginal_max')}")
    return problems


def _unknown_figure(name: str, known) -> str:
    """Why ``name`` is no figure, naming the closest one."""
    base = name.split(".", 1)[0]
    if base != name and base in known:
        hint = f"figures per core or zone share the limit {base!r}"
    else:
        closest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.0)
        hint = f"did you mean {closest[0]!r}?" if closest else "no figures are known"
    return f"unknown figure {name!r}: no test measures it ({hint})"


def _read(path: Path, known=None) -> list[dict]:
    """The entries of a limits file, checked; with ``known``, figure names must be among them."""
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
        match = entry.get("match") or {}
        if not isinstance(match, dict):
            raise LimitsError(f"{where}: match must be a mapping of {', '.join(MATCH_KEYS)} to globs, got {match!r}")
        unknown = set(match) - set(MATCH_KEYS)
        if unknown:
            raise LimitsError(f"{where}: unknown match keys {sorted(unknown)} (use {', '.join(MATCH_KEYS)})")
        for name, spec in entry.items():
            if name == "match":
                continue
            if not isinstance(name, str):
                raise LimitsError(f"{where}: a figure name must be text, got {name!r}")
            if known is not None and name not in known:
                raise LimitsError(f"{where}: {_unknown_figure(name, known)}")
            if not isinstance(spec, dict) or not ({"min", "max"} & set(spec)):
                raise LimitsError(f"{where}: figure {name!r} needs 'min' and/or 'max'")
            unknown = set(spec) - set(SPEC_KEYS)
            if unknown:
                raise LimitsError(f"{where}: figure {name!r} has unknown keys {sorted(unknown)} "
                                  f"(use {', '.join(SPEC_KEYS)})")
            for key in NUMBER_KEYS:
                value = spec.get(key)
                if value is None:
                    continue
                if not _is_number(value):
                    raise LimitsError(f"{where}: {name}.{key} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise LimitsError(f"{where}: {name}.{key} must be a finite number, got {value!r}")
            for key in ("marginal_pct", "tolerance_pct"):
                if spec.get(key) is not None and spec[key] < 0:
                    raise LimitsError(f"{where}: {name}.{key} must not be negative, got {spec[key]:g}")
            if spec.get("marginal_pct") is not None and spec["marginal_pct"] >= 100:
                raise LimitsError(f"{where}: {name}.marginal_pct must be below 100, got {spec['marginal_pct']:g}")
            if spec.get("unit") is not None and not isinstance(spec["unit"], str):
                raise LimitsError(f"{where}: {name}.unit must be text, got {spec['unit']!r}")
            if spec.get("better") not in (None, "higher", "lower"):
                raise LimitsError(f"{where}: {name}.better must be 'higher' or 'lower', got {spec['better']!r}")
            problems = _bound_problems(spec)
            if problems:
                raise LimitsError(f"{where}: {name}: " + "; ".join(problems))
    return entries


def figure_names(path: Path | str = DEFAULT_FILE) -> frozenset[str]:
    """The figures a limits file defines (of the default file: the figures the suite gates)."""
    return frozenset(name for entry in _read(Path(path)) for name in entry if name != "match")


@attr.s
class Limits:
    """The merged entries of the default file and any override files."""

    entries = attr.ib(factory=list)  # (source, entry)
    known = attr.ib(default=frozenset())  # the figure names override entries may use

    @classmethod
    def load(cls, *overrides: Path | str, default: Path = DEFAULT_FILE) -> "Limits":
        """The default file's entries, then each override's; an override may only name the
        default file's figures and ``UNGATED_FIGURES``."""
        defaults = _read(Path(default))
        known = frozenset(n for entry in defaults for n in entry if n != "match") | UNGATED_FIGURES
        entries = [(f"{Path(default).name}#{i + 1}", entry) for i, entry in enumerate(defaults)]
        for path in overrides:
            entries += [(f"{Path(path).name}#{i + 1}", entry) for i, entry in enumerate(_read(Path(path), known))]
        return cls(entries, known)

    def select(self, *, board: str = "", model: str = "", runtime: str = "") -> dict[str, Limit]:
        """Every figure's limit for this board, model and runtime (later entries win).

        Raises LimitsError if the merged bounds of a figure contradict each other (an override's
        ``min`` above the default ``max``), naming the entries each bound came from."""
        keys = {"board": board, "model": model, "runtime": runtime}
        specs: dict[str, dict] = {}
        origins: dict[str, dict] = {}
        for source, entry in self.entries:
            match = entry.get("match") or {}
            if not all(fnmatch.fnmatchcase(keys[k], str(pattern)) for k, pattern in match.items()):
                continue
            for name, spec in entry.items():
                if name != "match":
                    given = {k: spec[k] for k in SPEC_KEYS if k in spec}
                    specs.setdefault(name, {}).update(given, source=source)
                    origins.setdefault(name, {}).update(dict.fromkeys(given, source))
        for name, spec in specs.items():
            problems = _bound_problems(spec, origins[name])
            if problems:
                raise LimitsError(f"limits for {name} (board {board!r}, model {model!r}, runtime {runtime!r}) "
                                  "contradict each other once merged: " + "; ".join(problems))
        return {name: Limit(name=name, **spec) for name, spec in specs.items()}
