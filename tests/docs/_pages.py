"""The documentation pages and their code blocks, as the docs tests read them.

A page is ``README.md`` or any markdown file under ``docs/`` (pages added later are picked up by themselves). A code
block is a fenced block (```` ``` ```` or ``~~~``); its language is the first word of the info string. A Python block
runs in the tests unless the line before its fence is the marker ``<!-- no-run: <why> -->`` (see
docs/contributing.md).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PYTHON = frozenset({"python", "py"})
NO_RUN = re.compile(r"^\s*<!--\s*no-run(?::\s*(?P<why>.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page.

    Attributes:
        page: The page, relative to the repository root.
        line: The line of its opening fence (1-based).
        language: First word of the info string (lower case; empty when none).
        code: The block's text, dedented by the fence's indentation.
        no_run: The reason of a ``<!-- no-run: ... -->`` marker on the line before the fence, ``""`` for a marker
            without a reason, ``None`` without a marker.
    """

    page: str
    line: int
    language: str
    code: str
    no_run: str | None

    @property
    def runs(self) -> bool:
        """Whether the docs tests execute this block."""
        return self.language in PYTHON and self.no_run is None


def pages() -> list[Path]:
    """README.md and every markdown page under docs/ (the MkDocs hooks folder excluded), in a stable order."""
    found = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.relative_to(DOCS).parts)
    return [ROOT / "README.md", *found]


def page_id(page: Path) -> str:
    """The page's path relative to the repository root, as test ids and messages show it."""
    return page.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order.

    Raises:
        ValueError: For a fence that is never closed.
    """
    return _parse(page)[0]


def markers(page: Path) -> list[int]:
    """Lines (1-based) of every ``no-run`` marker on ``page`` outside code blocks."""
    return _parse(page)[1]


def _parse(page: Path) -> tuple[list[Block], list[int]]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    marked: list[int] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            if NO_RUN.match(lines[index]):
                marked.append(index + 1)
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        closing = re.compile(rf"^\s{{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(index + 1, len(lines)) if closing.match(lines[j])), None)
        if end is None:
            raise ValueError(f"{page_id(page)}:{index + 1}: the code fence opened here is never closed.")
        info = opening["info"].strip().split()
        marker = NO_RUN.match(lines[index - 1]) if index > 0 else None
        body = "\n".join(line[indent:] if not line[:indent].strip() else line for line in lines[index + 1 : end])
        found.append(
            Block(
                page=page_id(page),
                line=index + 1,
                language=info[0].lower() if info else "",
                code=textwrap.dedent(body) + "\n",
                no_run=None if marker is None else (marker["why"] or ""),
            )
        )
        index = end + 1
    return found, marked
