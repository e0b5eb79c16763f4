"""The architecture of docs/architecture.md holds in the code.

The layer table and the recipe API table are parsed from the doc itself, so the doc and this test
cannot drift. Every ``import`` / ``from ... import`` statement of ``meshops/`` counts, at module
level and inside functions (found with ``ast``; nothing is imported to find them).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "meshops"
DOC = ROOT / "docs" / "architecture.md"
MAX_FUNCTION_LINES = 80


# ---------------------------------------------------------------- the doc


def _table(marker: str) -> list[list[str]]:
    """Rows (cells stripped) of the markdown table between ``<!-- marker:begin`` and ``<!-- marker:end``."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(rf"<!-- {marker}:begin[^>]*-->(.*?)<!-- {marker}:end", text, re.S)
    assert m, f"{DOC}: no table between '<!-- {marker}:begin' and '<!-- {marker}:end'"
    lines = [ln.strip() for ln in m.group(1).strip().splitlines() if ln.strip()]
    assert len(lines) >= 3 and set(lines[1]) <= set("|-: "), f"{DOC}: the {marker} table has no header"
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def _names(cell: str) -> list[str]:
    return [n.strip().strip("`") for n in cell.split(",") if n.strip()]


@dataclass(frozen=True)
class Unit:
    rank: int
    name: str
    modules: tuple[str, ...]
    may_import: frozenset[str]
    never: frozenset[str]

    def owns(self, module: str) -> bool:
        # The package root owns only itself (meshops/__init__.py); the others own their subtree.
        return any(module == m or (m != "meshops" and module.startswith(m + ".")) for m in self.modules)


@cache
def units() -> dict[str, Unit]:
    out = {}
    for row in _table("layers"):
        assert len(row) == 6, f"{DOC}: layer row {row} does not have 6 cells"
        rank, name, mods, may, never, _ = row
        out[name] = Unit(int(rank), name, tuple(_names(mods)), frozenset(_names(may)), frozenset(_names(never)))
    return out


def unit_of(module: str) -> Unit | None:
    owners = [u for u in units().values() if u.owns(module)]
    return owners[0] if len(owners) == 1 else None


# ---------------------------------------------------------------- the code


@cache
def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _known(name: str) -> str:
    """The meshops module ``name`` refers to (a module, or the module a name is imported from)."""
    mods = modules()
    while name not in mods:
        name = name.rpartition(".")[0]
    return name


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    line: int

    def where(self) -> str:
        return f"{modules()[self.src].relative_to(ROOT)}:{self.line}: {self.src} -> {self.dst}"


def _statements(path: Path) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def edges() -> tuple[Edge, ...]:
    """Every import of a meshops module by a meshops module (``from P import m`` of a submodule ``m``
    counts as an import of ``P.m``, of a name defined in ``P`` as an import of ``P``)."""
    mods = modules()
    out = []
    for src, path in mods.items():
        for node in _statements(path):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "meshops"]
            else:
                base = _absolute(node, src, path)
                if base.split(".")[0] != "meshops":
                    continue
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            out += [Edge(src, _known(t), node.lineno) for t in targets if _known(t) != src]
    return tuple(out)


@cache
def third_party() -> tuple[tuple[str, str, int], ...]:
    """(module, top-level package, line) of every import of something outside meshops."""
    out = []
    for src, path in modules().items():
        for node in _statements(path):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif node.level == 0 and node.module:
                names = [node.module]
            else:
                names = []
            out += [(src, n.split(".")[0], node.lineno) for n in names if n.split(".")[0] != "meshops"]
    return tuple(out)


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges():
        graph[e.src].add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in modules():
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _describe(comp: list[str]) -> str:
    inside = set(comp)
    found = sorted({e.where() for e in edges() if e.src in inside and e.dst in inside})
    return "a circle through " + ", ".join(comp) + ":\n  " + "\n  ".join(found)


# ---------------------------------------------------------------- the tests


def test_layer_table_is_a_layer_order():
    us = units()
    assert {"ops", "nn", "graph", "data", "train", "cli"} <= set(us)
    for u in us.values():
        for dep in u.may_import:
            assert dep in us, f"{DOC}: unit '{u.name}' may import '{dep}', which is not a unit of the table"
            assert us[dep].rank < u.rank, (
                f"{DOC}: unit '{u.name}' (rank {u.rank}) may import '{dep}' (rank {us[dep].rank}): "
                "an arrow must point to a lower rank"
            )
    claimed = [m for u in us.values() for m in u.modules]
    assert len(claimed) == len(set(claimed)), f"{DOC}: a module is in two rows: {sorted(claimed)}"


def test_every_module_has_exactly_one_unit_and_every_row_has_modules():
    homeless = [m for m in modules() if unit_of(m) is None]
    assert not homeless, f"modules in no row (or two) of the layer table of {DOC}: {homeless}"
    empty = [u.name for u in units().values() if not any(u.owns(m) for m in modules())]
    assert not empty, f"{DOC}: layer rows that match no module of meshops/: {empty}"


def test_no_import_points_up_or_sideways():
    bad = []
    for e in edges():
        a, b = unit_of(e.src), unit_of(e.dst)
        if a is None or b is None or a is b:
            continue
        if b.name not in a.may_import:
            bad.append(f"{e.where()} ({a.name}, rank {a.rank}, may not import {b.name}, rank {b.rank})")
    assert not bad, f"imports against the layer order of {DOC}:\n" + "\n".join(bad)


def test_no_forbidden_third_party_import():
    bad = []
    for src, pkg, line in third_party():
        u = unit_of(src)
        if u is not None and pkg in u.never:
            bad.append(f"{modules()[src].relative_to(ROOT)}:{line}: {src} imports {pkg} ({u.name} never imports it)")
    assert not bad, "\n".join(bad)


def test_the_walk_sees_function_level_and_relative_imports():
    # Guards the walk itself: known lazy (function-level) imports must be found as edges.
    found = {(e.src, e.dst) for e in edges()}
    assert ("meshops.ops.rbf", "meshops.ops._rbf_triton") in found  # inside rbf_eval
    assert ("meshops.train.trainer", "meshops.train.loop") in found
    assert ("meshops.train.trainer", "meshops.viz.curves") in found  # inside finish


def test_no_import_circle():
    bad = cycles()
    assert not bad, "import circles:\n" + "\n".join(_describe(c) for c in bad)


def test_data_init_only_re_exports():
    tree = ast.parse((PKG / "data" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # the docstring
            continue
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]:
            continue
        pytest.fail(f"meshops/data/__init__.py:{node.lineno} defines something ({type(node).__name__})")


@pytest.mark.parametrize("folder", ["train", "data"])
def test_functions_fit_on_a_screen(folder):
    long = []
    for f in sorted((PKG / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{f.relative_to(ROOT)}:{node.lineno}: {node.name} has {n} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


# ---------------------------------------------------------------- the recipes


def _recipe_api() -> list[str]:
    return [_names(row[0])[0] for row in _table("recipe-api")]


def _allowed_module(name: str) -> bool:
    for pat in _recipe_api():
        if name == pat or (pat.endswith(".*") and (name == pat[:-2] or name.startswith(pat[:-1]))):
            return True
    return False


def _public(module: str) -> set[str]:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return set(names)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def _recipe_uses(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every meshops import of a recipe file, with ``alias.attr``
    chains of an ``import meshops...`` resolved to the module and name they reach."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    uses: list[tuple[int, str, str | None]] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "meshops":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                uses.append((node.lineno, sub, None) if _is_module(sub) else (node.lineno, node.module, a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "meshops":
                    uses.append((node.lineno, a.name, None))
                    aliases[a.asname or "meshops"] = a.name if a.asname else "meshops"
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            chain, cur = [], node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                mod, rest = aliases[cur.id], chain[::-1]
                while rest and _is_module(f"{mod}.{rest[0]}"):
                    mod = f"{mod}.{rest.pop(0)}"
                uses.append((node.lineno, mod, rest[0] if rest else None))
    return uses


def test_recipes_use_only_the_recipe_api():
    importlib.import_module("meshops")
    files = sorted((ROOT / "datasets").rglob("*.py"))
    assert files, "no recipes under datasets/"
    bad = []
    for f in files:
        for line, module, name in _recipe_uses(f):
            where = f"{f.relative_to(ROOT)}:{line}"
            if not _allowed_module(module):
                bad.append(f"{where}: {module} is not in the recipe API of {DOC.name}")
            elif name is not None and name not in _public(module):
                bad.append(f"{where}: {module}.{name} is not a public name of {module}")
    assert not bad, "\n".join(bad)


def test_recipe_api_modules_exist():
    for pat in _recipe_api():
        mod = pat[:-2] if pat.endswith(".*") else pat
        assert importlib.util.find_spec(mod) is not None, f"{DOC}: recipe API module {pat} does not exist"
