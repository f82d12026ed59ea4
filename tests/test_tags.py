"""Every tag is spelled once, in ``regimescope/tags.py``.

The tags are a contract (design.md section 3, docs/tags.md): the indicators and the monitor write them, and the
alerts, the verdict, the sinks, the report and the TensorBoard plugin read them back. Each side must hold the same
bytes, so each tag (and each family or prefix of tags) is spelled in one place and read from there. A second
spelling, even one built with the module's own helper, ``tag("kernel", "distance_from_init")``, agrees with the
first only until one of them changes, and then a writer and a reader part silently: a chart stays empty, a report
panel reads "not logged".

The scan below parses every module under ``regimescope/`` except ``tags.py`` and reports, file and line, the two
ways a tag gets spelled anew: a string (or f-string, ``f"{ROOT}/..."`` included) that begins with
``regimescope/``, and a ``tag(...)`` or ``noise_tag(...)`` call whose arguments are all string literals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import regimescope
from regimescope import tags

PACKAGE = Path(regimescope.__file__).parent
TAG_START = f"{tags.ROOT}/"
BUILDERS = frozenset({"tag", "noise_tag"})
"""The functions of ``tags.py`` that build a tag from its parts."""


def _is_root(node: ast.expr) -> bool:
    """Whether ``node`` reads ``ROOT`` (``ROOT`` or ``tags.ROOT``)."""
    return (isinstance(node, ast.Name) and node.id == "ROOT") or (
        isinstance(node, ast.Attribute) and node.attr == "ROOT"
    )


def _is_literal(node: ast.AST) -> bool:
    """Whether ``node`` is a string literal."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _spells_a_tag(node: ast.AST) -> bool:
    """Whether ``node`` is a string starting with ``regimescope/`` or a ``tag``/``noise_tag`` call of literals."""
    if _is_literal(node):
        return node.value.startswith(TAG_START)
    if isinstance(node, ast.JoinedStr) and len(node.values) > 1:
        first, second = node.values[:2]
        return (
            isinstance(first, ast.FormattedValue)
            and _is_root(first.value)
            and _is_literal(second)
            and second.value.startswith("/")
        )
    if isinstance(node, ast.Call) and (node.args or node.keywords):
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        return name in BUILDERS and all(_is_literal(argument) for argument in arguments)
    return False


def spellings(source: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every tag that ``source`` spells itself rather than reading it from ``tags.py``."""
    found = {
        (node.lineno, ast.get_source_segment(source, node) or "")
        for node in ast.walk(ast.parse(source))
        if _spells_a_tag(node)
    }
    return sorted(found)


def test_the_scan_finds_each_way_of_spelling_a_tag() -> None:
    source = """\
A = "regimescope/regime/score"
B = f"regimescope/kernel/{metric}"
C = f"{ROOT}/alerts"
D = f"{tags.ROOT}/noise/kernel/{metric}"
E = tag("regime", "label")
F = tags.noise_tag("regimescope/kernel/velocity")
G = tag(family="kernel", metric="share")
H = tag(KERNEL_FAMILY, metric)
I = f"{ROOT}{SUFFIX}"
J = "see regimescope/kernel/velocity"
"""
    assert [line for line, _ in spellings(source)] == [1, 2, 3, 4, 5, 6, 6, 7]


def test_no_module_spells_a_tag_outside_tags_py() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {code}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "tags.py"
        for line, code in spellings(path.read_text(encoding="utf-8"))
    ]
    assert not found, "tags spelled outside regimescope/tags.py (read them from there):\n" + "\n".join(found)
