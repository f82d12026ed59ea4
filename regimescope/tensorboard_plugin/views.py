"""The JSON the dashboard's frontend reads: run summaries with their timelines, and one run in detail."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from regimescope.report.figures import BLOCK_DISTANCE_PREFIX, KERNEL_METRICS
from regimescope.report.html import failure, notes
from regimescope.report.run_data import BALANCE_PREFIX, LAYER_DISTANCE_PREFIX, RunData
from regimescope.tags import metric_of

GRIDS = (
    ("kernel distance from init S(K_b0, K_bt), per block", BLOCK_DISTANCE_PREFIX, "distance"),
    ("kernel distance from init S(K_l0, K_lt), per layer", LAYER_DISTANCE_PREFIX, "distance"),
    ("balance (mean rho_k: +1 upstream, 0 balanced, -1 downstream), per layer pair", BALANCE_PREFIX, "balance"),
)
"""The per-layer heat maps: (title, tag prefix of the family, color scale). The per-block one only where logged."""


def summary_view(run: RunData) -> dict[str, Any]:
    """A run's name, final verdict, alert count, verdict timeline, whole-model kernel series and, when its monitor
    paused, the error (``failure``: step and message)."""
    final = run.final()
    paused = failure(run)
    kernel = []
    for kernel_tag, title, positive in KERNEL_METRICS:
        series = run.series(kernel_tag)
        if series is not None:
            kernel.append({"metric": metric_of(kernel_tag), "title": title, "positive": positive, **asdict(series)})
    return {
        "name": run.name,
        "label": final[0] if final else None,
        "score": final[1] if final else None,
        "alerts": len(run.alerts),
        "timeline": run.timeline(),
        "failure": None if paused is None else {"step": paused.step, "message": paused.message},
        "kernel": kernel,
    }


def run_view(run: RunData, image_steps: list[int]) -> dict[str, Any]:
    """Everything the dashboard shows of one run.

    Args:
        run: The run's data.
        image_steps: Steps of its NTK heatmap images (served by the ``/image`` route, by index).
    """
    grids = []
    for title, prefix, scale in GRIDS:
        grid = run.layer_grid(prefix)
        if grid.layers or prefix != BLOCK_DISTANCE_PREFIX:
            grids.append({"title": title, "scale": scale, **asdict(grid)})
    return {
        **summary_view(run),
        "notes": [{"title": title, "html": body} for title, body in notes(run)],
        "alert_list": [asdict(alert) for alert in run.alerts],
        "grids": grids,
        "images": [
            {"step": step, "url": "image?" + urlencode({"run": run.name, "index": index})}
            for index, step in enumerate(image_steps)
        ],
    }
