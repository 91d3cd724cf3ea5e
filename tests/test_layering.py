"""The import direction of DESIGN.md, checked on the source: every ``import`` and ``from ... import``
statement of every module of ``wideseek_env/`` (module level, inside functions, under
``TYPE_CHECKING``, relative or absolute) read with :mod:`ast`, nothing imported or run.

- ``wideseek_env.table`` is the bottom layer: it imports only itself and ``wideseek_env.errors``;
- ``tasks`` and ``evaluation`` both sit on it and never import each other; neither imports
  ``taskgen`` (the generator sits above both);
- ``wideseek_env`` never imports ``agents`` or ``benchmarks``;
- no import circle among ``wideseek_env`` modules, a deferred import inside a function included
  (deferring an import hides a circle from Python, not from the design).

An edge goes from a module to the module it names: ``from wideseek_env.evaluation import official``
names the submodule ``wideseek_env.evaluation.official``; ``from wideseek_env.tasks import Task``
names the package ``wideseek_env.tasks`` (its ``__init__``). Parent packages that Python initialises
on the way are not edges, since every module would otherwise depend on ``wideseek_env/__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# layer package -> packages of wideseek_env it must not import (by the first name under wideseek_env)
FORBIDDEN = {
    "tasks": {"evaluation", "taskgen"},
    "evaluation": {"tasks", "taskgen"},
}
TABLE_MAY_IMPORT = {"table", "errors"}


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package`` (an ``__init__.py`` is
    its package)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_names(module: str, path: Path) -> list[tuple[tuple[str, ...], int]]:
    """(candidate dotted names, line) of everything ``module`` imports, anywhere in the file:
    ``(X,)`` for ``import X``; ``(X.y, X)`` for ``from X import y`` (``y`` may be a submodule or a
    name defined in ``X``: the caller keeps the first that is a module)."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(((alias.name,), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                found.append(((f"{source}.{alias.name}", source), node.lineno))
    return found


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same package: first line}; outside imports dropped."""
    modules = module_names(root, package)
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        for candidates, line in imported_names(module, path):
            target = next((c for c in candidates if c in modules), None)
            if target is None:  # ``import wideseek_env.x.y`` of a name inside a module, or outside
                target = candidates[-1]
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
            if target in modules and target != module:
                graph[module].setdefault(target, line)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def layer(module: str) -> str:
    """``wideseek_env.evaluation.scorer`` -> ``evaluation``; ``wideseek_env.env`` -> ``env``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    edges = [f"{a} -> {b} (line {graph[a][b]})" for a in component for b in graph[a] if b in component]
    return "; ".join(edges)


# ------------------------------------------------------------------------------- the checker


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_checker_sees_deferred_relative_and_type_checking_imports_and_their_circles(tmp_path):
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/low/__init__.py", "from pkg.low.a import A\n")
    write(tmp_path, "pkg/low/a.py", "import os\nA = 1\ndef f():\n    from pkg.high import b\n")
    write(tmp_path, "pkg/high/__init__.py", "")
    write(tmp_path, "pkg/high/b.py", "from ..low import a\nfrom . import c\n")
    write(tmp_path, "pkg/high/c.py",
          "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high.b\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.low"] == {"pkg.low.a": 1}
    assert graph["pkg.low.a"] == {"pkg.high.b": 4}  # inside a function; ``os`` is not ours
    assert graph["pkg.high.b"] == {"pkg.low.a": 1, "pkg.high.c": 2}  # relative, one and two levels
    assert graph["pkg.high.c"] == {"pkg.high.b": 3}  # under TYPE_CHECKING
    assert circles(graph) == [["pkg.high.b", "pkg.high.c", "pkg.low.a"]]
    del graph["pkg.low.a"]["pkg.high.b"], graph["pkg.high.c"]["pkg.high.b"]
    assert circles(graph) == []


# ------------------------------------------------------------------------------- the package


def test_no_import_circle_among_wideseek_env_modules():
    graph = import_graph(ROOT, "wideseek_env")
    assert len(graph) > 50 and "wideseek_env.table.schema" in graph
    found = circles(graph)
    assert not found, "import circles (move the shared piece down a layer): " + " | ".join(
        describe(graph, c) for c in found
    )


def test_table_is_the_bottom_layer_importing_only_itself_and_errors():
    graph = import_graph(ROOT, "wideseek_env")
    table = [m for m in graph if layer(m) == "table"]
    assert {"wideseek_env.table.schema", "wideseek_env.table.markdown", "wideseek_env.table.cells",
            "wideseek_env.table.preprocess", "wideseek_env.table.dates"} <= set(table)
    above = [
        f"{m} imports {t} (line {line})"
        for m in table
        for t, line in graph[m].items()
        if layer(t) not in TABLE_MAY_IMPORT
    ]
    assert not above, "wideseek_env.table must not import the layers above it: " + "; ".join(above)


def test_tasks_and_evaluation_do_not_import_each_other_or_taskgen():
    graph = import_graph(ROOT, "wideseek_env")
    wrong = [
        f"{m} imports {t} (line {line})"
        for m in graph
        for t, line in graph[m].items()
        if layer(t) in FORBIDDEN.get(layer(m), ())
    ]
    assert not wrong, "; ".join(wrong) + " (shared pieces belong in wideseek_env.table)"


def test_wideseek_env_never_imports_agents_or_benchmarks():
    wrong = [
        f"{module} imports {candidates[-1]} (line {line})"
        for module, path in module_names(ROOT, "wideseek_env").items()
        for candidates, line in imported_names(module, path)
        if candidates[-1].split(".")[0] in ("agents", "benchmarks")
    ]
    assert not wrong, "; ".join(wrong)
