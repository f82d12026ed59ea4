"""The phase-diagram figure: the forecast from initialisation next to the measured regime, one cell per point.

Drawn on ``matplotlib.figure.Figure`` directly (no ``pyplot``), like the report's figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regimescope.report.figures import new_figure
from regimescope.sweep.boundary import FORECAST_BOUNDARY, MEASURED_BOUNDARY
from regimescope.sweep.grid import Axis, Value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORMAP = "RdBu_r"
"""Blue lazy, red rich (the report's label colours run the same way)."""
FAILED_COLOR = "#bdbdbd"
"""Cells of failed points (and of missing values)."""
RATIO_DECADES = 1.5
"""The forecast panel's colours span this many decades of ``q`` on either side of the boundary."""


def _format(value: Value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(rows: Sequence[Mapping[str, Any]], fixed: Mapping[str, Value]) -> Mapping[str, Any] | None:
    return next((row for row in rows if all(row.get(k) == v for k, v in fixed.items())), None)


def _number(row: Mapping[str, Any] | None, key: str) -> float:
    value = None if row is None or row.get("error") is not None else row.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _crossing(a: float, b: float, level: float, log: bool) -> float | None:
    """Where between two neighbouring cells (0 at ``a``, 1 at ``b``) the value crosses ``level``, if it does."""
    f = (lambda v: math.log(v) if v > 0 else math.nan) if log else float
    a, b, level = f(a), f(b), f(level)
    if math.isfinite(a) and math.isfinite(b) and (a - level) * (b - level) < 0:
        return (level - a) / (b - a)
    return None


def _boundary_segments(grid: list[list[float]], level: float, log: bool) -> list[tuple[list[float], list[float]]]:
    """Line segments ``(xs, ys)`` where ``grid`` crosses ``level`` between neighbouring cells, in cell coordinates:
    vertical ones between columns, horizontal ones between rows."""
    segments = []
    for y, line in enumerate(grid):
        for x in range(len(line) - 1):
            where = _crossing(line[x], line[x + 1], level, log)
            if where is not None:
                segments.append(([x + where] * 2, [y - 0.5, y + 0.5]))
    for y in range(len(grid) - 1):
        for x in range(len(grid[y])):
            where = _crossing(grid[y][x], grid[y + 1][x], level, log)
            if where is not None:
                segments.append(([x - 0.5, x + 0.5], [y + where] * 2))
    return segments


def _panel(ax: Axes, values: list[list[float]], texts: list[list[str]], norm: Any, x: Axis, y: Axis | None) -> Any:
    from matplotlib import colormaps

    cmap = colormaps[COLORMAP].with_extremes(bad=FAILED_COLOR)
    image = ax.imshow(values, cmap=cmap, norm=norm, origin="lower", aspect="auto", interpolation="nearest")
    for row, line in enumerate(texts):
        for column, text in enumerate(line):
            value = values[row][column]
            dark = math.isfinite(value) and abs(float(norm(value)) - 0.5) > 0.3  # deep blue or red: white text
            ax.text(column, row, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(x.ordered())), [_format(v) for v in x.ordered()], fontsize=7)
    ax.set_xlabel(x.name, fontsize=8)
    if y is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(len(y.ordered())), [_format(v) for v in y.ordered()], fontsize=7)
        ax.set_ylabel(y.name, fontsize=8)
    return image


def _draw_boundaries(ax: Axes, ratios: list[list[float]], scores: list[list[float]]) -> None:
    for grid, level, log, style in ((ratios, FORECAST_BOUNDARY, True, "--"), (scores, MEASURED_BOUNDARY, False, "-")):
        for xs, ys in _boundary_segments(grid, level, log):
            ax.plot(xs, ys, color="black", lw=1.6, ls=style)


def phase_figure(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis], steps: int | None = None) -> Figure:
    """Forecast (left) and measured (right) phase diagrams, one pair of panels per value of a third knob.

    Forecast cells are coloured by the lazy ratio ``q`` on a log scale centred on the boundary (blue lazy, red rich)
    and labelled with the forecast (``L`` lazy, ``D`` delayed-rich, ``R`` rich) and ``q``; measured cells by the final
    richness score, labelled with it and the first step labelled rich. Grey cells failed. The dashed line is the
    forecast boundary (``q`` = :data:`~regimescope.sweep.boundary.FORECAST_BOUNDARY`), the solid one the measured
    boundary (score :data:`~regimescope.sweep.boundary.MEASURED_BOUNDARY`), both interpolated between cells.

    Args:
        rows: The sweep's table.
        axes: The grid's knobs: x, then y, then panel rows.
        steps: Training steps per point (for the title).
    """
    from matplotlib.colors import LogNorm, Normalize

    x, y = axes[0], axes[1] if len(axes) > 1 else None
    panels = list(axes[2].ordered()) if len(axes) > 2 else [None]
    measured = any(row.get("score") is not None for row in rows)
    height = 1.2 + len(panels) * (0.9 + 0.45 * (len(y.values) if y else 1))
    figure = new_figure(11 if measured else 6, height)
    grid_axes = figure.subplots(len(panels), 2 if measured else 1, squeeze=False)
    ratio_norm = LogNorm(FORECAST_BOUNDARY * 10**-RATIO_DECADES, FORECAST_BOUNDARY * 10**RATIO_DECADES, clip=True)
    score_norm = Normalize(0, 1)
    for panel_axes, panel in zip(grid_axes, panels):
        forecast_ax = panel_axes[0]
        fixed_panel = {} if panel is None else {axes[2].name: panel}
        ratios, scores, forecast_texts, measured_texts = [], [], [], []
        for y_value in y.ordered() if y else [None]:
            cells = []
            for x_value in x.ordered():
                fixed = {**fixed_panel, x.name: x_value, **({} if y is None else {y.name: y_value})}
                cells.append(_cell(rows, fixed))
            ratios.append([_number(c, "forecast_ratio") for c in cells])
            scores.append([_number(c, "score") for c in cells])
            forecast_texts.append([_forecast_text(c) for c in cells])
            measured_texts.append([_measured_text(c) for c in cells])
        image = _panel(forecast_ax, ratios, forecast_texts, ratio_norm, x, y)
        _draw_boundaries(forecast_ax, ratios, scores)
        suffix = "" if panel is None else f", {axes[2].name} = {_format(panel)}"
        forecast_ax.set_title(f"forecast from initialisation (lazy ratio q){suffix}", fontsize=9)
        figure.colorbar(image, ax=forecast_ax, fraction=0.04, label="q")
        if measured:
            measured_ax = panel_axes[1]
            image = _panel(measured_ax, scores, measured_texts, score_norm, x, y)
            _draw_boundaries(measured_ax, ratios, scores)
            after = f" after {steps} steps" if steps else ""
            measured_ax.set_title(f"measured{after} (richness score){suffix}", fontsize=9)
            figure.colorbar(image, ax=measured_ax, fraction=0.04, label="score")
    title = f"Phase diagram: lazy (blue) or rich (red). Dashed: forecast boundary (q = {FORECAST_BOUNDARY:g})"
    figure.suptitle(
        title + (f"; solid: measured boundary (score {MEASURED_BOUNDARY:g})" if measured else ""), fontsize=10
    )
    return figure


def _forecast_text(row: Mapping[str, Any] | None) -> str:
    if row is None or row.get("error") is not None or row.get("forecast") is None:
        return "failed" if row is not None and row.get("error") else ""
    initial = {"lazy": "L", "delayed-rich": "D", "rich": "R"}.get(row["forecast"], "?")
    ratio = row.get("forecast_ratio")
    return initial if ratio is None else f"{initial} {ratio:.2g}"


def _measured_text(row: Mapping[str, Any] | None) -> str:
    if row is None or row.get("error") is not None:
        return "failed" if row is not None else ""
    if row.get("score") is None:
        return ""
    rich_at = row.get("time_to_rich")
    return f"{row['score']:.2f}" + ("" if rich_at is None else f"\nt={rich_at}")
