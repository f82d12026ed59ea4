"""``examples/phase_diagram.py --quick``: both sweeps run, and the diagrams have theory's shape at their corners."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "phase_diagram.py"


@pytest.mark.slow
def test_quick_phase_diagrams_have_the_shape_of_theory(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    pytest.importorskip("sklearn", reason="the `examples` extra is not installed (pip install -e '.[examples]')")
    spec = importlib.util.spec_from_file_location("example_phase_diagram", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    teacher, digits = module.main(["--quick", "--out", str(tmp_path)])
    for result in (teacher, digits):
        assert result.failed == []
        assert result.files["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / result.files["page"].parent.name / "runs").is_dir()
    forecast = {(row["delta"], row["init_scale"]): row["forecast"] for row in teacher.table}
    measured = {(row["delta"], row["init_scale"]): row["label"] for row in teacher.table}
    for corner in ((0.0, 0.05), (4.0, 0.05)):  # small, balanced or upstream: rich
        assert forecast[corner] == "rich" and measured[corner] == "rich"
    # small but strongly downstream: lazy early (the readout fits on fixed features first)
    assert forecast[(-4.0, 0.05)] in ("lazy", "delayed-rich") and measured[(-4.0, 0.05)] == "lazy"
    assert all(forecast[(delta, 2.0)] == "lazy" for delta in (-4.0, 0.0, 4.0))  # large: lazy
    small = [row for row in digits.table if row["init_scale"] == 0.3]
    large = [row for row in digits.table if row["init_scale"] == 3.0]
    assert min(row["forecast_ratio"] for row in small) > max(row["forecast_ratio"] for row in large)
    for rows in (small, large):  # measured: in 16 steps the larger learning rate moves the kernel further
        distance = {row["lr"]: row["distance"] for row in rows}
        assert distance[0.1] > 1.5 * distance[0.01]  # 2.3x to 8x over torch seeds 0-3
