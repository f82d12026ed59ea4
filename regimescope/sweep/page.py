"""The sweep's HTML page in the report's style: the phase diagram, the boundaries and the table of points."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from regimescope.report.html import Section, page
from regimescope.sweep.boundary import FORECAST_BOUNDARY, MEASURED_BOUNDARY, forecast_boundary, measured_boundary
from regimescope.sweep.grid import Axis, points

COLUMNS = (
    ("forecast", "forecast"),
    ("forecast_ratio", "q"),
    ("label", "measured"),
    ("score", "score"),
    ("distance", "S(K0, KT)"),
    ("change", "|KT - K0| / |K0|"),
    ("growth", "|KT| / |K0|"),
    ("time_to_rich", "rich at step"),
    ("loss_end", "final loss"),
    ("seconds", "seconds"),
)
"""The table's metric columns after the knobs: (row key, heading)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    text = html.escape(str(value))
    return f'<span class="{text}">{text}</span>' if text in ("lazy", "transitional", "rich") else text


def points_table(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    """One row per point: its knob values, forecast, measured metrics, and its error when it failed."""
    names = [axis.name for axis in axes]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [*names, *(title for _, title in COLUMNS), "error"])
    body = []
    for row in rows:
        cells = [_cell(row.get(name)) for name in names] + [_cell(row.get(key)) for key, _ in COLUMNS]
        cells.append(html.escape(row.get("error") or ""))
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def boundaries_text(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    """Where each numeric knob crosses the boundary, forecast and measured, per line of the other knobs."""
    items = []
    for axis in axes:
        if not axis.numeric or len(axis.values) < 2:
            continue
        others = [a for a in axes if a is not axis]
        for fixed in points(others) if others else [{}]:
            where = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in fixed.items())
            found = forecast_boundary(rows, axis.name, fixed), measured_boundary(rows, axis.name, fixed)
            text = [
                f"{kind} at {axis.name} ≈ {', '.join(f'{v:.3g}' for v in values)}" if values else f"no {kind} crossing"
                for kind, values in zip(("forecast", "measured"), found)
            ]
            items.append(f"<li>{html.escape(where or 'along ' + axis.name)}: {html.escape('; '.join(text))}</li>")
    if not items:
        return "<p>No numeric knob with two or more values: no boundary to locate.</p>"
    return (
        f"<p>Forecast boundary: lazy ratio q = {FORECAST_BOUNDARY:g}; measured boundary: richness score "
        f"{MEASURED_BOUNDARY:g}. Both are interpolated between neighbouring points.</p><ul>{''.join(items)}</ul>"
    )


def sweep_page(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis], figure_png: bytes, intro: str) -> str:
    """The complete page."""
    return page(
        "regimescope sweep",
        intro,
        [
            Section("Phase diagram", png=figure_png),
            Section("Boundaries", body=boundaries_text(rows, axes)),
            Section("Points", body=points_table(rows, axes)),
        ],
    )
