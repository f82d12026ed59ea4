"""No module of ``regimescope/`` imports a module of a layer above its own (the data flow of design.md, read upwards).

Each top-level module or subpackage of ``regimescope`` sits in one layer of :data:`LAYERS`, from the foundations up
to the command line; a module may import from lower layers and from its own package, never from its own layer's
other members or from above. Imports are read with ``ast`` (function-level, ``TYPE_CHECKING`` and
``importlib.import_module("...")`` ones included), so the check needs no import of the package. The package's
``__init__.py`` is the public façade and re-exports names of every layer lazily; it is the one file left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "regimescope"

LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "tags",  # the names of tags and labels, read by every layer
        "batch budget distributed guards image outputs progress record schedule unwrap",  # foundations
        "functional conservation exact",  # pure math; closed-form solutions
        "ntk",  # the NTK engine
        "probe",  # the fixed probe (its check runs the model through the engine's side-effect-free call)
        "capture fingerprint",  # one pass over the probe; what ties a saved state to its run
        "split_kernel sharded",  # the capture spread over ranks
        "indicators forecast",  # measurements; the step-0 forecast
        "verdict",  # score, label, explanation
        "alerts knobs",  # rules over records and verdicts; knobs that move the regime, and advice
        "sinks",  # writers (the monitor writes to them; they know only records)
        "monitor",  # schedules, measures, writes
        "report",  # reading what the sinks wrote
        "tensorboard_plugin",  # the TensorBoard tab, drawn from the report's run data
        "scenarios sweep",  # runs theory knows the answer for; phase diagrams, both driving the monitor
        "cli",  # the command line, on top
    )
)
"""Layers from the bottom up."""


def _unit(module: str) -> str | None:
    """The layer unit of a dotted module name: ``regimescope.ntk.plan`` -> ``ntk``; ``None`` outside the package."""
    parts = module.split(".")
    if parts[0] != "regimescope":
        return None
    return parts[1] if len(parts) > 1 else ""


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``path``, relative ones resolved, ``from a import b`` as ``a.b``."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(relative.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise LookupError(unit)


def _sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py")


def upward_imports() -> list[str]:
    """Every import of a module from a layer above (or beside) its own, as ``file:line: unit -> unit``."""
    problems: list[str] = []
    for path in _sources():
        own = path.relative_to(PACKAGE).with_suffix("").parts[0]
        for line, module in _imported_modules(path):
            unit = _unit(module)
            if unit is None or unit == own:
                continue
            if unit == "" or unit not in {u for layer in LAYERS for u in layer}:
                unit = ""  # `from regimescope import X` of a name, not a module: the façade
            if unit == "" or _layer_of(unit) >= _layer_of(own):
                target = f"regimescope.{unit}" if unit else "regimescope (the package façade)"
                problem = f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {target}"
                if problem not in problems:
                    problems.append(problem)
    return problems


def test_every_module_has_a_layer() -> None:
    units = {path.relative_to(PACKAGE).with_suffix("").parts[0] for path in _sources()}
    unplaced = sorted(units - {unit for layer in LAYERS for unit in layer})
    assert not unplaced, f"{unplaced} sit in no layer: add each to LAYERS in {Path(__file__).name}, above its imports"


def test_no_module_imports_from_its_own_layer_or_above() -> None:
    problems = upward_imports()
    assert not problems, "imports that run upward (move the code down, or the import up):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from regimescope.monitor import RegimeMonitor, tag\n", "verdict/x.py:1: verdict imports regimescope.monitor"),
        ("def f():\n    import regimescope.sinks.jsonl\n", "verdict/x.py:2: verdict imports regimescope.sinks"),
        ("from ..alerts import rule\n", "verdict/x.py:1: verdict imports regimescope.alerts"),
        ("import importlib\nimportlib.import_module('regimescope.cli.main')\n", "verdict imports regimescope.cli"),
        ("from regimescope import RegimeMonitor\n", "regimescope (the package façade)"),
        ("from regimescope.verdict import score\nfrom regimescope.tags import tag\nimport torch\n", None),
    ],
    ids=["upward", "inside-a-function", "relative", "import_module", "facade", "allowed"],
)
def test_the_check_sees_every_kind_of_import(
    source: str, found: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check itself, on a planted module of ``verdict`` (so it cannot pass by reading nothing)."""
    root = tmp_path / "regimescope"
    (root / "verdict").mkdir(parents=True)
    (root / "verdict" / "x.py").write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", root)
    problems = upward_imports()
    if found is None:
        assert problems == []
    else:
        assert len(problems) == 1 and found in problems[0], problems
