"""Every dotted ``regimescope.…`` name written in the package, its integrations, examples, benchmarks and docs resolves.

Docstrings and docs point readers to functions by their dotted names; a function renamed or moved leaves such a name
pointing nowhere, which neither the interpreter nor the docs build notices. Each name is resolved by importing its
longest importable prefix and reading the rest as attributes.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    *sorted((ROOT / "regimescope").rglob("*.py")),
    *sorted((ROOT / "integrations").rglob("*.py")),
    *sorted((ROOT / "examples").rglob("*.py")),
    *sorted((ROOT / "benchmarks").rglob("*.py")),
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
)
"""The files whose dotted names are checked."""
NAME = re.compile(r"(?<![\w/.])regimescope(?:\.[A-Za-z_]\w*)+")
"""A dotted name under ``regimescope`` (not a path such as ``runs/regimescope.jsonl``)."""
LOG_FILE = "regimescope.jsonl"
"""The log's file name (and ``regimescope.jsonl.lock``): dotted-looking, not a Python name."""


def resolves(dotted: str) -> bool:
    """Whether ``regimescope.a.b.c`` names an importable module or an attribute reachable from one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            if not hasattr(target, attr):
                return attr in getattr(target, "__dataclass_fields__", {})  # a field without a class default
            target = getattr(target, attr)
        return True
    return False


def names(text: str) -> set[str]:
    """The dotted ``regimescope`` names in ``text``, without a trailing file suffix read as an attribute."""
    found = {match.group(0).rstrip(".") for match in NAME.finditer(text)}
    return {name for name in found if not name.startswith(LOG_FILE)}


def test_the_name_pattern_skips_paths_and_file_names() -> None:
    text = "see `regimescope.tags.ROOT`; logs go to runs/regimescope.jsonl, regimescope.jsonl and its .lock"
    text += " (regimescope.jsonl.lock)"
    assert names(text) == {"regimescope.tags.ROOT"}


def test_resolves_tells_a_moved_name_from_a_present_one() -> None:
    assert resolves("regimescope.tags.ROOT") and resolves("regimescope.ntk.rules.registry")
    assert resolves("regimescope.verdict.labeler.Verdict.evidence")  # a dataclass field
    assert not resolves("regimescope.forecast.MinimalModelSolution")
    assert not resolves("regimescope.sweep.knobs")


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_dotted_name_resolves(path: Path) -> None:
    """Needs the optional frameworks the docs name (Lightning, transformers), which ``make test`` installs."""
    unresolved = sorted(name for name in names(path.read_text()) if not resolves(name))
    assert unresolved == [], f"{path.relative_to(ROOT)} names what does not exist: {unresolved}"
