"""The report's matplotlib figures: verdict timelines, indicator families, per-layer views, cost.

Figures are built on ``matplotlib.figure.Figure`` directly (no ``pyplot``, no global backend change).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from regimescope.record import TAG_ROOT
from regimescope.report.run_data import BALANCE_PREFIX, LAYER_DISTANCE_PREFIX, RunData, Series

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

LABEL_COLORS = {"lazy": "#2e86c1", "transitional": "#f1c40f", "rich": "#c0392b"}
"""Band colors of the verdict labels (the same as the TensorBoard dashboard's)."""

KERNEL_METRICS = (
    ("distance_from_init", "kernel distance S(K0, Kt)", True),
    ("relative_change", "|Kt - K0| / |K0|", True),
    ("velocity", "velocity (rad / step)", True),
    ("target_alignment", "kernel-target alignment", False),
    ("effective_rank", "effective rank", False),
    ("norm_ratio", "|Kt| / |K0|", True),
)
"""Whole-model kernel indicators shown side by side: (metric, title, log scale)."""

LOG_RANGE = 1e-8
"""Log-scale panels show at most this many decades below their largest value (rounding-level values are cut)."""


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure, or an ``ImportError`` that says how to install matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "regimescope report draws with matplotlib, which could not be imported "
            f"({error}); install it with `pip install 'regimescope[report]'` (or `pip install matplotlib`)."
        ) from error
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _positive(series: Series) -> tuple[list[int], list[float]]:
    pairs = [(s, v) for s, v in zip(series.steps, series.values) if math.isfinite(v) and v > 0]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _draw_bands(ax: Axes, run: RunData) -> None:
    timeline = run.timeline()
    steps, labels, scores = timeline["steps"], timeline["label"], timeline["score"]
    if not steps:
        ax.text(0.5, 0.5, "no verdict", ha="center", va="center", transform=ax.transAxes, color="#757575")
        return
    end = steps[-1] if len(steps) > 1 else steps[0] + 1
    for i, step in enumerate(steps):
        right = steps[i + 1] if i + 1 < len(steps) else end
        ax.axvspan(step, max(right, step + 1e-9), color=LABEL_COLORS.get(labels[i], "#9e9e9e"), lw=0)
    ax.plot(steps, scores, color="white", lw=1.8)
    for alert in run.alerts:
        ax.axvline(alert.step, color="black", lw=0.8, ls=":")
    ax.set_xlim(steps[0], end)
    ax.set_ylim(0, 1)


def timeline_figure(runs: Sequence[RunData]) -> Figure:
    """One verdict band per run, stacked so runs compare side by side; dotted lines mark alerts."""
    figure = new_figure(10, 0.8 + 0.75 * len(runs))
    axes = figure.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs):
        _draw_bands(ax, run)
        final = run.final()
        ax.set_ylabel(run.name, rotation=0, ha="right", va="center")
        ax.set_yticks([])
        if final:
            ax.set_title(f"{final[0]} (score {final[1]:.2f}), {len(run.alerts)} alert(s)", loc="right", fontsize=8)
    axes[-1].set_xlabel("step")
    handles = [_patch(color, label) for label, color in LABEL_COLORS.items()]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    figure.suptitle("Regime verdict over training (bands) and richness score (white line)", fontsize=10)
    return figure


def _patch(color: str, label: str) -> Patch:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def kernel_figure(runs: Sequence[RunData]) -> Figure:
    """The whole-model kernel indicators, one panel each, one line per run, with noise bands where estimated."""
    figure = new_figure(12, 6.5)
    axes = figure.subplots(2, 3).ravel()
    for ax, (metric, title, log) in zip(axes, KERNEL_METRICS):
        tag = f"{TAG_ROOT}/kernel/{metric}"
        for run in runs:
            series = run.series(tag)
            if series is None:
                continue
            steps, values = _positive(series) if log else (series.steps, series.values)
            (line,) = ax.plot(steps, values, lw=1.4, label=run.name)
            noise = run.series(f"{TAG_ROOT}/noise/kernel/{metric}")
            if noise is not None:
                by_step = dict(zip(noise.steps, noise.values))
                low = [max(v - by_step.get(s, 0.0), v * 1e-3 if log else -math.inf) for s, v in zip(steps, values)]
                high = [v + by_step.get(s, 0.0) for s, v in zip(steps, values)]
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
        if log and ax.lines:
            ax.set_yscale("log")
            top = max(max(line.get_ydata(), default=1.0) for line in ax.lines)
            ax.set_ylim(bottom=max(ax.get_ylim()[0], top * LOG_RANGE))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    figure.suptitle("Kernel indicators (shaded: measurement noise from the two probe halves)", fontsize=10)
    return figure


def families_figure(run: RunData) -> Figure:
    """Every per-layer indicator family of one run, one panel each, one line per layer (or layer pair)."""
    panels = {name: lines for name, lines in run.panels().items() if "" not in lines}
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    figure = new_figure(12, 2.8 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, lines) in zip(axes, sorted(panels.items())):
        for layer, series in sorted(lines.items()):
            ax.plot(series.steps, series.values, lw=1.3, label=layer)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        if len(lines) <= 8:
            ax.legend(fontsize=6)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    figure.suptitle(f"{run.name}: indicators per layer", fontsize=10)
    return figure


def layers_figure(run: RunData) -> Figure:
    """Layer x step heat maps of one run: per-layer kernel distance (log color) and layer balance."""
    from matplotlib.colors import LogNorm, Normalize

    grids = [
        ("kernel distance from init, per layer", run.layer_grid(LAYER_DISTANCE_PREFIX), LogNorm(1e-6, 1), "Blues"),
        ("balance (mean rho_k), per layer pair", run.layer_grid(BALANCE_PREFIX), Normalize(-1, 1), "RdBu_r"),
    ]
    figure = new_figure(12, 1.6 + 0.35 * sum(max(len(g.layers), 1) for _, g, _, _ in grids))
    axes = figure.subplots(len(grids), 1, squeeze=False)[:, 0]
    for ax, (title, grid, norm, cmap) in zip(axes, grids):
        ax.set_title(title, fontsize=9)
        if not grid.layers:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="#757575")
            ax.set_axis_off()
            continue
        values = [
            [math.nan if v is None else max(v, 1e-6) if isinstance(norm, LogNorm) else v for v in row]
            for row in grid.values
        ]
        image = ax.imshow(values, aspect="auto", interpolation="nearest", norm=norm, cmap=cmap)
        ax.set_yticks(range(len(grid.layers)), grid.layers, fontsize=7)
        ticks = sorted({0, len(grid.steps) // 2, len(grid.steps) - 1})
        ax.set_xticks(ticks, [str(grid.steps[t]) for t in ticks], fontsize=7)
        ax.set_xlabel("measurement (step)", fontsize=8)
        figure.colorbar(image, ax=ax, fraction=0.03)
    figure.suptitle(f"{run.name}: per-layer view", fontsize=10)
    return figure


def cost_figure(runs: Sequence[RunData]) -> Figure:
    """The monitor's own cost: seconds per measurement and the fraction of wall time it used, per run."""
    figure = new_figure(10, 3.2)
    seconds_ax, fraction_ax = figure.subplots(1, 2)
    for run in runs:
        for ax, metric in ((seconds_ax, "seconds"), (fraction_ax, "fraction")):
            series = run.series(f"{TAG_ROOT}/cost/{metric}")
            if series is not None:
                ax.plot(series.steps, series.values, lw=1.3, label=run.name)
    seconds_ax.set_title("seconds per measurement", fontsize=9)
    fraction_ax.set_title("fraction of wall time spent measuring", fontsize=9)
    for ax in (seconds_ax, fraction_ax):
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    seconds_ax.legend(fontsize=7)
    figure.suptitle("Monitor cost", fontsize=10)
    return figure
