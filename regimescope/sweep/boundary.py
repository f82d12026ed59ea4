"""Where a diagram changes side: the knob value at which a metric crosses a threshold along one axis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from regimescope.forecast import LAZY_RATIO
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE

MEASURED_BOUNDARY = (LAZY_BELOW + RICH_ABOVE) / 2
"""Score at which the measured diagram changes side: the middle of the transitional band."""
FORECAST_BOUNDARY = LAZY_RATIO
"""Lazy ratio at which the forecast diagram changes side (its lazy / not lazy boundary)."""


def _interpolate(x_0: float, x_1: float, y_0: float, y_1: float, level: float, log_x: bool, log_y: bool) -> float:
    fx = math.log if log_x else float
    fy = math.log if log_y else float
    weight = (fy(level) - fy(y_0)) / (fy(y_1) - fy(y_0))
    value = fx(x_0) + weight * (fx(x_1) - fx(x_0))
    return math.exp(value) if log_x else value


def crossings(
    rows: Sequence[Mapping[str, Any]],
    knob: str,
    metric: str,
    level: float,
    *,
    where: Mapping[str, Any] | None = None,
    log_metric: bool = False,
) -> list[float]:
    """Knob values at which ``metric`` crosses ``level`` along ``knob`` (the other knobs fixed by ``where``).

    Points are sorted by the knob; between two neighbours on opposite sides of ``level`` the crossing is
    interpolated linearly (in log space for a positive knob, and for the metric when ``log_metric``). Failed points
    and points without the metric are skipped.

    Args:
        rows: The sweep's table.
        knob: A numeric knob.
        metric: e.g. ``"score"`` (level :data:`MEASURED_BOUNDARY`) or ``"forecast_ratio"`` (level
            :data:`FORECAST_BOUNDARY`, ``log_metric=True``).
        level: The threshold.
        where: Values of the other knobs selecting one line of the grid.
        log_metric: Interpolate ``log(metric)``.

    Returns:
        The crossings in increasing knob order (empty when the metric stays on one side).
    """
    line = [
        (float(row[knob]), float(row[metric]))
        for row in rows
        if row.get("error") is None
        and isinstance(row.get(metric), (int, float))
        and math.isfinite(row[metric])
        and (not log_metric or row[metric] > 0)
        and all(row.get(name) == value for name, value in (where or {}).items())
    ]
    line.sort()
    log_x = bool(line) and line[0][0] > 0
    found = []
    for (x_0, y_0), (x_1, y_1) in zip(line, line[1:]):
        if (y_0 - level) * (y_1 - level) < 0:
            found.append(_interpolate(x_0, x_1, y_0, y_1, level, log_x, log_metric))
        elif y_1 == level and y_0 != level:
            found.append(x_1)
    return found


def forecast_boundary(
    rows: Sequence[Mapping[str, Any]], knob: str, where: Mapping[str, Any] | None = None
) -> list[float]:
    """Where the forecast's lazy ratio crosses :data:`FORECAST_BOUNDARY` along ``knob``."""
    return crossings(rows, knob, "forecast_ratio", FORECAST_BOUNDARY, where=where, log_metric=True)


def measured_boundary(
    rows: Sequence[Mapping[str, Any]], knob: str, where: Mapping[str, Any] | None = None
) -> list[float]:
    """Where the measured richness score crosses :data:`MEASURED_BOUNDARY` along ``knob``."""
    return crossings(rows, knob, "score", MEASURED_BOUNDARY, where=where)
