"""The engine's package layout: stages that import only the stages before them, and no import cycle.

Every ``import`` of a ``regimescope.ntk`` module is read from the source (also those inside functions), so a lazy
import that would hide a cycle at run time is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import regimescope.ntk

PACKAGE = Path(regimescope.ntk.__file__).parent
STAGES = ("implementation", "rules", "model", "planning", "execution", "options", "engine", "__init__")
"""The engine's stages in data-flow order; a module may import its own stage and the stages before it."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> str:
    rest = module.removeprefix("regimescope.ntk").lstrip(".")
    return rest.split(".")[0] if rest else "__init__"


def _graph() -> dict[str, set[str]]:
    """``module -> the regimescope.ntk modules it imports``, for every module of the package."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[_module(path)] = {name for name in imported if name.startswith("regimescope.ntk.")}
    return graph


def test_every_module_belongs_to_a_stage() -> None:
    assert {_stage(module) for module in _graph()} <= set(STAGES)


def test_stages_import_only_earlier_stages() -> None:
    upward = [
        (module, name)
        for module, imported in _graph().items()
        for name in imported
        if STAGES.index(_stage(name)) > STAGES.index(_stage(module))
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(graph.get(module, ())):
            if state.get(name) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path[path.index(name):] + [name])}")
            if name in graph and name not in state:
                visit(name, path + [name])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_rule_modules_do_not_import_the_registry() -> None:
    graph = _graph()
    rule_modules = [m for m in graph if m.startswith("regimescope.ntk.rules.") and not m.endswith(".registry")]
    assert rule_modules
    assert all("regimescope.ntk.rules.registry" not in graph[m] for m in rule_modules)
