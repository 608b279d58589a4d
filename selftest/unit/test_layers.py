"""The layers hold: no import cycles, nothing outside fixtures/ and selftest/ imports them,
and no module imports another module's private names.

Read with Python's ``ast`` (imports inside functions count: a lazy import is still a
dependency, and a lazy cycle is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hil", "fixtures", "bench", "tests", "selftest")
OURS = ("hil", "fixtures", "bench", "selftest", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    return {module_name(p): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))
            if "guest" not in p.relative_to(root).parts}


def imports(path: Path, name: str, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for every import of our own code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] in OURS]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] not in OURS:
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in known:  # ``from hil import limits``: a module, not a name
                    out.append((sub, None, node.lineno))
                else:
                    out.append((mod, alias.name, node.lineno))
    return out


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    known = set(mods)
    edges = {}
    for name, path in mods.items():
        targets = set()
        for mod, _, _ in imports(path, name, known):
            while mod and mod not in known:
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                targets.add(mod)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer_violations(mods: dict[str, Path]) -> list[str]:
    known = set(mods) | set(modules(ROOT, ("selftest",)))
    found = {}
    for name, path in mods.items():
        top = name.split(".")[0]
        for mod, attr_name, line in imports(path, name, known):
            where = f"{path.relative_to(ROOT)}:{line}"
            target_top = mod.split(".")[0]
            if target_top in ("fixtures", "selftest") and top not in ("fixtures", "selftest"):
                found[f"{where} imports {mod} (only fixtures/ and selftest/ may)"] = 1
            elif target_top == "selftest" and top != "selftest":
                found[f"{where} imports {mod} (the suite's plugins never use the selftests)"] = 1
            if attr_name and attr_name.startswith("_") and not attr_name.startswith("__") and mod != name:
                found[f"{where} imports private name {attr_name} from {mod}"] = 1
    return list(found)


def test_no_import_cycles():
    found = cycles(graph(modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_layers_and_private_names():
    found = layer_violations(modules())
    assert not found, "\n".join(found)


# --- the checker itself fails on what it must catch ----------------------------------------------

@pytest.fixture
def tree(tmp_path):
    def write(files: dict[str, str]) -> dict[str, Path]:
        for rel, text in files.items():
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return {module_name_at(tmp_path, tmp_path / rel): tmp_path / rel for rel in files}
    return write


def module_name_at(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_checker_finds_a_lazy_cycle(tree, monkeypatch):
    mods = tree({"hil/__init__.py": "", "hil/a.py": "from hil import b\n",
                 "hil/b.py": "def f():\n    from hil.a import thing\n"})
    assert cycles(graph(mods)) == [["hil.a", "hil.b"]]


def test_checker_finds_private_and_layer_imports(tree, monkeypatch):
    mods = tree({"hil/__init__.py": "", "hil/a.py": "from hil.b import _hidden\nfrom fixtures.x import y\n",
                 "hil/b.py": "_hidden = 1\n", "bench/__init__.py": "", "bench/c.py": "import selftest.conftest\n"})
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", next(iter(mods.values())).parents[1])
    found = layer_violations(mods)
    assert any("private name _hidden" in f for f in found)
    assert any("imports fixtures.x" in f for f in found)
    assert any("imports selftest.conftest" in f for f in found)
