"""Every "theory.md <section>" the library, its tests, examples, benchmarks and docs cite exists in docs/theory.md.

Docstrings and messages cite the theory notes by number: ``theory.md 5.5``, ``theory.md section 2``, ``theory.md
sections 4-6``, ``theory.md 6.3, 6.6``. A number is a heading of docs/theory.md: ``## 5. ...`` or ``### 5.5 ...``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs._pages import DOCS, ROOT, pages

THEORY = DOCS / "theory.md"
SOURCES = ("regimescope", "integrations", "examples", "benchmarks", "tests")
NUMBER = r"\d+(?:\.\d+)?"
REFERENCE = re.compile(
    rf"theory\.md(?:'s)?[\s:(]*(?:§\s*|sections?\s+|scenarios?\s+)?(?P<numbers>{NUMBER}(?:\s*(?:[-–,]|and)\s*{NUMBER})*)"
)
WRAPPED = re.compile(r"\s*\n\s*(?:#\s*)?")
"""A line break and the next line's indentation or comment marker: a reference may be wrapped over two lines."""


def _sections() -> set[str]:
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", THEORY.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return set(headings)


def _files() -> list[Path]:
    found = [path for folder in SOURCES for path in (ROOT / folder).rglob("*.py")]
    return sorted(set(found) | set(pages()))


def _references() -> list[tuple[str, str]]:
    """``(where, number)`` for each section number cited next to ``theory.md``."""
    cited = []
    for path in _files():
        text = WRAPPED.sub(" ", path.read_text(encoding="utf-8"))
        for match in REFERENCE.finditer(text):
            for number in re.findall(NUMBER, match["numbers"]):
                cited.append((path.relative_to(ROOT).as_posix(), number))
    return cited


def test_theory_notes_have_their_numbered_sections() -> None:
    assert {"1", "2", "3", "4", "5", "6", "5.5", "6.7"} <= _sections()


def test_every_cited_section_exists() -> None:
    cited = _references()
    assert len(cited) > 40  # the library cites its theory often; far fewer means this test no longer reads them
    missing = sorted({f"{where}: theory.md {number}" for where, number in cited if number not in _sections()})
    assert not missing, "cited sections that docs/theory.md does not have:\n" + "\n".join(missing)
