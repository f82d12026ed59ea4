"""Every Python code block of README.md and of every page under docs/ runs as written.

The blocks of one page run in order, in one fresh namespace (a page's later blocks use what its earlier ones
defined), in a temporary working directory (what they write, e.g. ``runs/exp``, lands there), on CPU. A block that
must not run carries ``<!-- no-run: <why> -->`` on the line before its fence (docs/contributing.md).
"""

from __future__ import annotations

import linecache
from pathlib import Path

import pytest

from tests.docs._pages import blocks, markers, page_id, pages

OPTIONAL = frozenset({"lightning", "pytorch_lightning", "transformers", "accelerate", "matplotlib", "sklearn"})
"""Frameworks of the optional extras: a page needing one is skipped where the extra is not installed."""

RUNNABLE = [page for page in pages() if any(block.runs for block in blocks(page))]


def test_the_front_page_and_the_guide_have_code_to_run() -> None:
    names = {page_id(page) for page in RUNNABLE}
    assert {"README.md", "docs/guide.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_run_markers_say_why_and_sit_on_a_python_block(page: Path) -> None:
    """A marker without a reason, or not right before a Python fence, is a mistake (the block would run)."""
    marked = {block.line - 1: block for block in blocks(page) if block.no_run is not None}
    for line in markers(page):
        block = marked.get(line)
        assert block is not None, f"{page_id(page)}:{line}: a no-run marker must be on the line right before a fence"
        assert block.no_run, f"{page_id(page)}:{line}: say why the block does not run: <!-- no-run: <why> -->"
        assert block.language in {"python", "py"}, f"{page_id(page)}:{line}: only Python blocks run; drop the marker"


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page.stem}"}
    for block in blocks(page):
        if not block.runs:
            continue
        name = f"{block.page}:{block.line}"
        linecache.cache[name] = (len(block.code), None, block.code.splitlines(keepends=True), name)  # tracebacks
        try:
            exec(compile(block.code, name, "exec"), namespace)
        except ModuleNotFoundError as error:
            if error.name and error.name.split(".")[0] in OPTIONAL:
                pytest.skip(f"{block.page}:{block.line} needs {error.name}, from an optional extra not installed here")
            raise
