"""The JSON the dashboard's frontend reads: run summaries with their timelines, and one run in detail."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from regimescope.report.run_data import BALANCE_PREFIX, LAYER_DISTANCE_PREFIX, RunData

GRIDS = {
    "kernel distance from init S(K_l0, K_lt)": LAYER_DISTANCE_PREFIX,
    "balance (mean rho_k: +1 upstream, 0 balanced, -1 downstream)": BALANCE_PREFIX,
}
"""The per-layer heat maps: title -> tag prefix of the family."""


def summary_view(run: RunData) -> dict[str, Any]:
    """A run's name, final verdict, alert count and verdict timeline."""
    final = run.final()
    return {
        "name": run.name,
        "label": final[0] if final else None,
        "score": final[1] if final else None,
        "alerts": len(run.alerts),
        "timeline": run.timeline(),
    }


def run_view(run: RunData, image_steps: list[int]) -> dict[str, Any]:
    """Everything the dashboard shows of one run.

    Args:
        run: The run's data.
        image_steps: Steps of its NTK heatmap images (served by the ``/image`` route, by index).
    """
    return {
        **summary_view(run),
        "alert_list": [asdict(alert) for alert in run.alerts],
        "grids": [{"title": title, **asdict(run.layer_grid(prefix))} for title, prefix in GRIDS.items()],
        "images": [
            {"step": step, "url": "image?" + urlencode({"run": run.name, "index": index})}
            for index, step in enumerate(image_steps)
        ],
    }
