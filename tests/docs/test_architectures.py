"""The code blocks of docs/architectures.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architectures.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_its_three_examples() -> None:
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_code_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = BLOCKS[index]
    if "import transformers" in code:
        pytest.importorskip("transformers", reason="the `transformers` extra is not installed")
        pytest.importorskip("accelerate", reason="the `transformers` extra is not installed")
    monkeypatch.chdir(tmp_path)  # blocks that write (the Trainer's output_dir) write here
    exec(compile(code, f"{PAGE.name}[{index}]", "exec"), {"__name__": f"docs_block_{index}"})
