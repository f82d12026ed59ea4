"""The phase-diagram figure for one, two and three knobs, drawn from a table (no training)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from regimescope.sweep import parse_grid
from regimescope.sweep.figure import phase_figure

pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")


def _rows(grid: dict[str, list[float]], measured: bool = True) -> list[dict]:
    """A table whose richness falls with ``init_scale``; the last point failed."""
    rows = []
    for values in itertools.product(*grid.values()):
        row = dict(zip(grid, values), error=None, forecast="rich", forecast_ratio=0.5 / values[0])
        if measured:
            row.update(score=min(1.0, 0.2 / values[0]), time_to_rich=10, label="rich")
        rows.append(row)
    rows[-1].update(error="RuntimeError: diverged")
    return rows


def _titles(figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_title()]


@pytest.mark.parametrize(
    ("grid", "panels"),
    [
        ({"init_scale": [0.1, 0.3, 1.0]}, 1),
        ({"init_scale": [0.1, 1.0], "lr": [0.01, 0.1]}, 1),
        ({"init_scale": [0.1, 1.0], "lr": [0.01, 0.1], "width": [16, 64, 256]}, 3),
    ],
    ids=["one knob", "two knobs", "three knobs"],
)
def test_one_pair_of_panels_per_value_of_the_third_knob(grid: dict, panels: int) -> None:
    figure = phase_figure(_rows(grid), parse_grid(grid), steps=100)
    titles = _titles(figure)
    assert sum(t.startswith("forecast from initialisation") for t in titles) == panels
    assert sum(t.startswith("measured after 100 steps") for t in titles) == panels
    if panels > 1:
        assert [t.rsplit("width = ", 1)[-1] for t in titles if t.startswith("measured")] == ["16", "64", "256"]
    measured = [ax for ax in figure.axes if ax.get_title().startswith("measured")]
    missing = [int(np.isnan(np.asarray(ax.images[0].get_array(), dtype=float)).sum()) for ax in measured]
    assert missing == [0] * (panels - 1) + [1]  # the failed point, last in the table, is a grey cell of the last panel


def test_a_forecast_only_table_draws_only_the_forecast_panels() -> None:
    grid = {"init_scale": [0.1, 1.0], "lr": [0.01, 0.1]}
    figure = phase_figure(_rows(grid, measured=False), parse_grid(grid))
    assert [t for t in _titles(figure) if t.startswith("measured")] == []
    assert sum(t.startswith("forecast") for t in _titles(figure)) == 1
