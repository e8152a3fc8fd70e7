"""The library's shape: no import cycles, no sibling imports inside functions, small
modules and functions, chapters that only narrate."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "diffred"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_CELL_LINES = 12
GROUND_FLOOR = ("store", "device")


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    """The diffred modules an ``import from`` statement names (relative or absolute)."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("diffred"):
        return []
    mods = _modules()
    out = [target] if target in mods else []
    out += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
    return out or [target]


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """module -> the diffred modules it imports (at module level when ``top_level_only``)."""
    graph = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        deps = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                deps.update(_resolve(name, node, path.name == "__init__.py"))
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("diffred"))
        graph[name] = {d for d in deps if d != name and d != "diffred"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or ``None``."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_constructed_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph(top_level_only=False))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_function_level_imports_of_sibling_modules():
    top, every = import_graph(True), import_graph(False)
    late = {m: sorted(every[m] - top[m]) for m in every if every[m] - top[m]}
    assert not late, f"imports of diffred modules inside functions: {late}"


@pytest.mark.parametrize("module", GROUND_FLOOR)
def test_ground_floor_imports_nothing_from_diffred(module):
    assert import_graph(False)[f"diffred.{module}"] == set()


def test_module_and_function_sizes():
    problems = []
    for name, path in _modules().items():
        text = path.read_text()
        n = len(text.splitlines())
        if n > MAX_MODULE_LINES:
            problems.append(f"{name}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{name}.{node.name}: {length} lines")
    assert not problems, "over the size limits: " + "; ".join(problems)


CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)


def _code_lines(cell: str) -> list[str]:
    lines = [ln for ln in cell.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ":"))]
    return lines


@pytest.mark.parametrize("chapter", sorted((ROOT / "chapters").glob("*.md")), ids=lambda p: p.stem)
def test_chapters_only_narrate(chapter):
    problems = []
    for cell in CELL.findall(chapter.read_text()):
        lines = _code_lines(cell)
        if any(re.match(r"\s*(def|class|lambda)\b", ln) or "lambda " in ln for ln in lines):
            problems.append("defines a function")
        if len(lines) > MAX_CELL_LINES:
            problems.append(f"a cell of {len(lines)} lines: {lines[0][:60]!r}")
    assert not problems, f"{chapter.name}: " + "; ".join(problems)
