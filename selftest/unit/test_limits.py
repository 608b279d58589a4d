"""Limits files are checked when loaded, and name only figures the suite measures.

The catalogue of figure names is the default file's figures plus ``UNGATED_FIGURES``; the
suite scan at the end keeps it in step with what tests/ measures and asks limits for.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

from hil.measure.limits import DEFAULT_FILE, UNGATED_FIGURES, Limits, LimitsError, figure_names
from hil.paths import REPO

QWEN2_2B = "qwen2-vl-2b-instruct_w4a16_rk3576"


def _file(tmp_path: Path, *entries: str) -> Path:
    f = tmp_path / "mine.yaml"
    f.write_text("limits:\n" + "".join(f"  - {e}\n" for e in entries), encoding="utf-8")
    return f


# --- the committed file --------------------------------------------------------------------


def test_the_committed_limits_file_loads_and_selects_for_every_model_and_runtime():
    limits = Limits.load()
    models = {e["match"]["model"] for _, e in limits.entries if "model" in (e.get("match") or {})}
    assert QWEN2_2B in models
    for model in models:
        for runtime in ("1.2.0", "1.2.1", "1.2.2", "1.3.0"):
            selected = limits.select(board="rk3576-evb", model=model, runtime=runtime)
            assert "text_decode_tokens_per_s" in selected and "npu_load_peak_pct" in selected, model
    assert limits.known == figure_names(DEFAULT_FILE) | UNGATED_FIGURES


# --- each bad case is named: file, entry, field -----------------------------------------------


@pytest.mark.parametrize("spec,field,why", [
    ("{min: .nan}", "text_decode_tokens_per_s.min", "must be a finite number, got nan"),
    ("{max: .inf}", "text_decode_tokens_per_s.max", "must be a finite number, got inf"),
    ("{min: -.inf}", "text_decode_tokens_per_s.min", "must be a finite number, got -inf"),
    ("{min: 10, published: .nan}", "text_decode_tokens_per_s.published", "must be a finite number"),
    ("{max: true}", "text_decode_tokens_per_s.max", "must be a number, got True"),
    ("{min: 10, marginal_pct: false}", "text_decode_tokens_per_s.marginal_pct", "must be a number, got False"),
    ("{min: 1e3}", "text_decode_tokens_per_s.min", "must be a number, got '1e3'"),  # YAML 1.1: a string
    ("{min: 20, max: 10}", "text_decode_tokens_per_s", "min 20 is above max 10"),
    ("{min: 10, marginal_min: 9}", "text_decode_tokens_per_s", "marginal_min 9 is below min 10"),
    ("{min: 10, max: 20, marginal_min: 21}", "text_decode_tokens_per_s", "marginal_min 21 is above max 20"),
    ("{max: 20, marginal_max: 21}", "text_decode_tokens_per_s", "marginal_max 21 is above max 20"),
    ("{min: 10, max: 20, marginal_max: 9}", "text_decode_tokens_per_s", "marginal_max 9 is below min 10"),
    ("{min: 10, max: 20, marginal_min: 16, marginal_max: 14}", "text_decode_tokens_per_s",
     "marginal_min 16 is above marginal_max 14"),
    ("{min: 10, marginal_pct: -1}", "text_decode_tokens_per_s.marginal_pct", "must not be negative"),
    ("{min: 10, marginal_pct: 100}", "text_decode_tokens_per_s.marginal_pct", "must be below 100"),
    ("{min: 10, tolerance_pct: -3}", "text_decode_tokens_per_s.tolerance_pct", "must not be negative"),
    ("{min: 10, unit: 5}", "text_decode_tokens_per_s.unit", "must be text"),
])
def test_a_bad_value_names_file_entry_and_field(tmp_path, spec, field, why):
    f = _file(tmp_path, "{boot_to_shell_s: {max: 30}}", f"{{text_decode_tokens_per_s: {spec}}}")
    with pytest.raises(LimitsError) as e:
        Limits.load(f)
    assert str(e.value).startswith(f"{f}, entry 2: {field}"), str(e.value)
    assert why in str(e.value)


def test_a_misspelt_figure_names_the_closest_known_one(tmp_path):
    f = _file(tmp_path, "{match: {model: 'qwen2*'}, text_decode_token_per_s: {min: 13}}")
    with pytest.raises(LimitsError) as e:
        Limits.load(f)
    assert str(e.value) == (f"{f}, entry 1: unknown figure 'text_decode_token_per_s': no test measures it "
                            "(did you mean 'text_decode_tokens_per_s'?)")


@pytest.mark.parametrize("name,hint", [
    ("mm_init_ms", "did you mean 'init_ms'?"),  # measured, but gated by the limit init_ms
    ("npu_load_peak_pct.text.Core0", "figures per core or zone share the limit 'npu_load_peak_pct'"),
    ("npu_temp_c", "did you mean 'npu_temperature_c'?"),
])
def test_a_figure_not_looked_up_by_its_own_name_is_unknown(tmp_path, name, hint):
    with pytest.raises(LimitsError, match=re.escape(hint)):
        Limits.load(_file(tmp_path, f"{{'{name}': {{max: 100}}}}"))


def test_an_override_may_gate_an_ungated_figure(tmp_path):
    limits = Limits.load(_file(tmp_path, "{deploy_throughput_mib_s: {min: 5, unit: MiB/s}}"))
    assert limits.select()["deploy_throughput_mib_s"].min == 5
    assert "deploy_throughput_mib_s" not in Limits.load().select()


def test_the_default_file_names_the_catalogue_so_any_name_is_allowed_there(tmp_path):
    own = _file(tmp_path, "{my_figure: {max: 3}}")
    limits = Limits.load(default=own)
    assert "my_figure" in limits.known and "text_decode_tokens_per_s" not in limits.known
    with pytest.raises(LimitsError, match=f"{DEFAULT_FILE}, entry 1: unknown figure 'boot_to_shell_s'"):
        Limits.load(DEFAULT_FILE, default=own)


def test_unknown_keys_and_a_bad_match_are_still_refused(tmp_path):
    with pytest.raises(LimitsError, match=r"entry 1: figure 'encoder_ms' has unknown keys \['maximum'\]"):
        Limits.load(_file(tmp_path, "{encoder_ms: {max: 10, maximum: 12}}"))
    with pytest.raises(LimitsError, match=r"unknown match keys \['soc'\]"):
        Limits.load(_file(tmp_path, "{match: {soc: rk3576}, encoder_ms: {max: 10}}"))
    with pytest.raises(LimitsError, match="match must be a mapping"):
        Limits.load(_file(tmp_path, "{match: rk3576, encoder_ms: {max: 10}}"))


def test_bounds_that_contradict_only_once_merged_name_both_entries(tmp_path):
    f = _file(tmp_path, "{text_ttft_ms: {min: 2000}}")  # the default max for the 2B model is 1200
    limits = Limits.load(f)
    assert limits.select()["text_ttft_ms"].min == 2000, "no default max applies to an unknown model"
    with pytest.raises(LimitsError) as e:
        limits.select(model=QWEN2_2B)
    assert "text_ttft_ms" in str(e.value)
    assert "min 2000 (mine.yaml#1) is above max 1200 (rk3576.yaml#2)" in str(e.value)


def test_a_marginal_bound_left_without_its_limit_once_merged(tmp_path):
    f = _file(tmp_path, "{encoder_ms: {max: 4000, marginal_max: 3900}}", "{encoder_ms: {max: null, min: 1}}")
    with pytest.raises(LimitsError, match=r"marginal_max 3900 \(mine.yaml#1\) has no 'max'"):
        Limits.load(f).select(model=QWEN2_2B)


# --- the catalogue against what the suite measures --------------------------------------------

SUITE_DIRS = ("tests", "fixtures", "hil", "bench")


def _is_limits(node) -> bool:
    """``limits``, ``model_limits``, ``self.limits``: a dict of limits by name."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.endswith("limits")


def _names(node) -> list[str]:
    """The strings an expression can be: a constant, either branch of ``a if cond else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _names(node.body) + _names(node.orelse)
    return []


def _limits_get(node) -> list[str] | None:
    """The names ``<limits>.get(...)`` asks for, or None if ``node`` is no such call."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and _is_limits(node.func.value) and node.args):
        return _names(node.args[0])
    return None


def _figure(node) -> str | None:
    """A figure name, an f-string as a glob (``npu_load_peak_pct.*.*``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
    return None


def _is_measure(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "measure"


def _scan(path: Path):
    """(measured figure -> limit names it is checked against (empty: unchecked), names asked
    for with ``<limits>.get``, figures declared with ``@pytest.mark.figures``) of one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned = {}  # variable -> limit names, for ``limit = limits.get(...)`` then ``.within(limit)``
    asked, declared, measured = [], [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _limits_get(node.value) is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = _limits_get(node.value)
        if _limits_get(node) is not None:
            asked += _limits_get(node)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "figures"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "mark"):
            declared += [_figure(a) for a in node.args]
    within = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "within"
                and _is_measure(node.func.value)):
            within[id(node.func.value)] = node.args[0] if node.args else None
    for node in ast.walk(tree):
        if not _is_measure(node) or not node.args:
            continue
        name = _figure(node.args[0])
        assert name is not None, f"{path}:{node.lineno}: a figure named by an expression cannot be checked"
        arg = within.get(id(node))
        if arg is None:
            limit_names = []
        elif _limits_get(arg) is not None:
            limit_names = _limits_get(arg)
        elif _is_limits(arg):
            assert "*" not in name, (f"{path}:{node.lineno}: {name} is looked up in the limits by its formatted "
                                     "name; give it its limit by name with .within(limits.get(\"NAME\"))")
            limit_names = [name]
        elif isinstance(arg, ast.Name) and arg.id in assigned:
            limit_names = assigned[arg.id]
        else:
            raise AssertionError(f"{path}:{node.lineno}: cannot tell which limit {name} is checked against")
        measured.setdefault(name, set()).update(limit_names)
    return measured, asked, declared


def _suite():
    measured, asked, declared = {}, [], []
    for d in SUITE_DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            m, a, dec = _scan(path)
            for name, limits in m.items():
                measured.setdefault(name, set()).update(limits)
            asked += [(path.relative_to(REPO), n) for n in a]
            declared += [(path.relative_to(REPO), n) for n in dec]
    return measured, asked, declared


def test_every_figure_the_suite_measures_maps_to_a_known_limit_or_is_deliberately_ungated():
    known, gated = Limits.load().known, figure_names(DEFAULT_FILE)
    measured, asked, declared = _suite()
    assert "text_decode_tokens_per_s" in measured and "npu_load_peak_pct.*.*" in measured, "the scan found nothing"
    assert measured["mm_init_ms"] == {"init_ms"}
    assert measured["max_temperature_c.*.*"] == {"npu_temperature_c", "soc_temperature_c"}

    # every limit the suite asks for by name is one a limits file may define
    assert not [(p, n) for p, n in asked if n not in known], "limits asked for that no file may define"
    # every figure is checked against known limits, or is one of the deliberately ungated ones
    wrong = {name: sorted(limits - known) or "unchecked" for name, limits in measured.items()
             if (limits - known) or (not limits and name not in UNGATED_FIGURES)}
    assert not wrong, f"figures checked against no known limit: {wrong}"
    # every declared figure is one some test measures
    undeclared = [(p, n) for p, n in declared if not any(fnmatch.fnmatchcase(n, m) for m in measured)]
    assert not undeclared, f"@pytest.mark.figures names that no measure(...) call produces: {undeclared}"
    # the catalogue holds nothing the suite does not use: a misspelt default would gate nothing
    used = set().union(*measured.values())
    assert gated <= used, f"figures of {DEFAULT_FILE.name} that no test checks: {sorted(gated - used)}"
    stale = sorted(UNGATED_FIGURES - set(measured) - used)  # measured by name, or looked up by name
    assert not stale, f"ungated figures no test measures: {stale}"
    assert not UNGATED_FIGURES & gated, "a figure with a default limit is not ungated"
