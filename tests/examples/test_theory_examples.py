"""The exact-solution examples run in quick mode: measured and exact curves agree and the plot is written."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOLERANCE = {"distance": 0.03, "growth": 0.05, "fit": 0.05}
"""Largest relative gap to the exact solution in quick mode (4x the step of the full run, whose gaps are < 1%)."""


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their shared _exact_plot helper
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minimal_model", "lambda_balanced"])
def test_example_matches_the_exact_solution_and_saves_the_plot(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    out = tmp_path / f"{name}.png"
    trajectories = _load(name, monkeypatch).main(["--quick", "--out", str(out)])
    assert len(trajectories) == 4
    for trajectory in trajectories:
        for quantity, gap in trajectory.worst_error().items():
            assert gap < TOLERANCE[quantity], (trajectory.label, quantity, gap)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
