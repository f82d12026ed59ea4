"""`regimescope demo --quick`: runs end to end and its verdicts are what theory says."""

from __future__ import annotations

import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from regimescope.cli.main import main
from regimescope.sinks import read_jsonl

THEORY = {"balanced": "rich", "upstream": "rich", "large": "lazy", "wide-ntk": "lazy"}
LABELS = ("lazy", "transitional", "rich")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    logdir = tmp_path_factory.mktemp("demo")
    out = StringIO()
    with redirect_stdout(out):
        assert main(["demo", "--quick", "--logdir", str(logdir)]) == 0
    return out.getvalue(), logdir


def test_demo_verdicts_match_theory(demo_run: tuple[str, Path]) -> None:
    _, logdir = demo_run
    for run, expected in THEORY.items():
        records = read_jsonl(logdir / run / "regimescope.jsonl")
        final = LABELS[int(records[-1].scalars["regimescope/regime/label"])]
        assert final == expected, run


def test_demo_prints_table_and_tensorboard_line(demo_run: tuple[str, Path]) -> None:
    text, logdir = demo_run
    for run in ("balanced", "upstream", "downstream", "large", "wide-ntk"):
        assert any(line.startswith(run) for line in text.splitlines()), run
        assert list((logdir / run).glob("events.out.tfevents.*")), run
    assert f"tensorboard --logdir {logdir}" in text


def test_console_entry_point_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "regimescope.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout
