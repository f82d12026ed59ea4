"""The report's matplotlib figures: verdict timelines, indicator families, per-layer views, cost.

Figures are built on ``matplotlib.figure.Figure`` directly (no ``pyplot``, no global backend change). Steps are
drawn on a symmetric-log axis (linear up to step 1, logarithmic past it): the monitor measures at steps 0, 1, 2,
4, 8, ... before its regular interval, and most of the regime's story happens early. A legend is drawn only from
the lines that carry a label, so a run without some series draws no empty legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from regimescope.report.html import failure
from regimescope.report.run_data import BALANCE_PREFIX, LAYER_DISTANCE_PREFIX, LayerGrid, RunData, Series
from regimescope.tags import (
    BLOCK_KERNEL_DISTANCE,
    COST_FRACTION,
    COST_SECONDS,
    KERNEL_DISTANCE,
    KERNEL_EFFECTIVE_RANK,
    KERNEL_NORM_RATIO,
    KERNEL_RELATIVE_CHANGE,
    KERNEL_TARGET_ALIGNMENT,
    KERNEL_VELOCITY,
    LAZY,
    RICH,
    TRANSITIONAL,
    below,
    noise_tag,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

LABEL_COLORS = {LAZY: "#2e86c1", TRANSITIONAL: "#f1c40f", RICH: "#c0392b"}
"""Band colors of the verdict labels (the same as the TensorBoard dashboard's)."""

KERNEL_METRICS = (
    (KERNEL_DISTANCE, "kernel distance S(K0, Kt)", True),
    (KERNEL_RELATIVE_CHANGE, "|Kt - K0| / |K0|", True),
    (KERNEL_VELOCITY, "velocity (rad / step)", True),
    (KERNEL_TARGET_ALIGNMENT, "kernel-target alignment", False),
    (KERNEL_EFFECTIVE_RANK, "effective rank", False),
    (KERNEL_NORM_RATIO, "|Kt| / |K0|", True),
)
"""Whole-model kernel indicators shown side by side: (tag, title, positive: drawn on a log axis when its values
span more than :data:`LOG_SPAN`)."""

BLOCK_DISTANCE_PREFIX = below(BLOCK_KERNEL_DISTANCE)
"""Per-block kernel distances (:mod:`regimescope.indicators.layer_summary`), shown as a heat map when logged."""

LOG_RANGE = 1e-8
"""Log-scale panels show at most this many decades below their largest value (rounding-level values are cut)."""
LOG_SPAN = 100.0
"""A per-layer panel whose positive values span more than this factor is drawn on a log axis."""
TOP_LAYERS = 8
"""Per-layer panels name the layers that moved most (``max_t |v_t - v_0|``); the others are thin grey lines."""
OTHERS_COLOR = "#bdbdbd"


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


def _step_axis(ax: Axes, span: tuple[int, int] | None, label: bool = True) -> None:
    """Steps on a symmetric-log axis (linear from 0 to 1, logarithmic past 1), over ``span`` when given."""
    from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    if span is not None:
        ax.set_xlim(*span)
        ticks = [0] + [m * 10**e for e in range(12) for m in (1, 2, 5) if span[0] <= m * 10**e <= span[1]]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    if label:
        ax.set_xlabel("step (log scale)", fontsize=8)


def _legend(ax: Axes, **kwargs: object) -> None:
    """A legend of the labelled lines of ``ax``, or none when nothing is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _empty(ax: Axes, text: str = "not logged") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#757575", fontsize=9)


def _step_range(runs: Sequence[RunData]) -> tuple[int, int] | None:
    """The first and last measured step over all ``runs`` (one axis for all of them)."""
    steps = [step for run in runs for series in run.scalars.values() for step in series.steps]
    return (min(steps), max(max(steps), min(steps) + 1)) if steps else None


def _draw_bands(ax: Axes, run: RunData, end: int) -> None:
    timeline = run.timeline()
    steps, labels, scores = timeline["steps"], timeline["label"], timeline["score"]
    for i, step in enumerate(steps):
        right = steps[i + 1] if i + 1 < len(steps) else end
        ax.axvspan(step, max(right, step + 1e-9), color=LABEL_COLORS.get(labels[i], "#9e9e9e"), lw=0)
    ax.plot(steps, scores, color="white", lw=1.8)
    for alert in run.alerts:
        ax.axvline(alert.step, color="black", lw=0.8, ls=":")
    ax.set_ylim(0, 1)


def timeline_figure(runs: Sequence[RunData]) -> Figure:
    """One verdict band per run on one shared step axis, stacked so runs compare; dotted lines mark alerts."""
    figure = new_figure(10, 0.9 + 0.75 * len(runs))
    axes = figure.subplots(len(runs), 1, squeeze=False, sharex=True)[:, 0]
    span = _step_range(runs)
    for ax, run in zip(axes, runs):
        final, paused = run.final(), failure(run)
        if span is not None:
            _draw_bands(ax, run, span[1])
        if not run.timeline()["steps"]:
            _empty(ax, f"measuring paused at step {paused.step}" if paused else "no verdict")
        ax.set_ylabel(run.name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        title = f"{final[0]} (score {final[1]:.2f}), {len(run.alerts)} alert(s)" if final else ""
        if paused is not None:
            title = f"{title}; measuring paused at step {paused.step}".lstrip("; ")
        ax.set_title(title, loc="right", fontsize=8)
    if span is not None:
        _step_axis(axes[-1], span)
    handles = [_patch(color, label) for label, color in LABEL_COLORS.items()]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    figure.suptitle("Regime verdict over training (bands) and richness score (white line, 0 to 1)", fontsize=10)
    return figure


def _patch(color: str, label: str) -> Patch:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def kernel_figure(runs: Sequence[RunData]) -> Figure:
    """The whole-model kernel indicators, one panel each, one line per run, with noise bands where estimated."""
    figure = new_figure(12, 6.5)
    axes = figure.subplots(2, 3).ravel()
    colors: dict[str, object] = {}
    span = _step_range(runs)
    for ax, (kernel_tag, title, positive) in zip(axes, KERNEL_METRICS):
        for run in runs:
            series = run.series(kernel_tag)
            if series is None:
                continue
            steps, values = _positive(series) if positive else (series.steps, series.values)
            (line,) = ax.plot(steps, values, lw=1.4, marker=".", ms=3, color=colors.get(run.name))
            colors.setdefault(run.name, line.get_color())
            noise = run.series(noise_tag(kernel_tag))
            if noise is not None:
                by_step = dict(zip(noise.steps, noise.values))
                low = [max(v - by_step.get(s, 0.0), v * 1e-3 if positive else -math.inf) for s, v in zip(steps, values)]
                high = [v + by_step.get(s, 0.0) for s, v in zip(steps, values)]
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
        values = [v for line in ax.lines for v in line.get_ydata()]
        log = positive and _log_scale(values)
        if not ax.lines:
            _empty(ax)
        elif log:
            _log_axis(ax, values)
        ax.set_title(title + (" (log scale)" if log else ""), fontsize=9)
        _step_axis(ax, span)
        ax.tick_params(labelsize=7)
    handles = [_line(color, name) for name, color in colors.items()]
    if handles:
        columns = min(len(handles), 5)
        figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    figure.suptitle("Kernel indicators (shaded: measurement noise from the two probe halves)", fontsize=10)
    return figure


def _line(color: object, label: str) -> object:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, lw=1.4, label=label)


def movement(series: Series) -> float:
    """How far a series moved from its first value: ``max_t |v_t - v_0|`` over finite values (0 when none)."""
    finite = [v for v in series.values if math.isfinite(v)]
    return max((abs(v - finite[0]) for v in finite), default=0.0)


def top_movers(lines: dict[str, Series], count: int = TOP_LAYERS) -> list[str]:
    """The ``count`` layers of ``lines`` that moved most (:func:`movement`), most first (ties by name)."""
    return sorted(lines, key=lambda layer: (-movement(lines[layer]), layer))[:count]


def _log_scale(values: Sequence[float]) -> bool:
    """Whether values read best on a log axis: none negative, the positive ones spanning more than :data:`LOG_SPAN`
    (zeros, such as every distance at step 0, are left off a log axis)."""
    finite = [v for v in values if math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    return bool(positive) and min(finite) >= 0 and max(positive) > LOG_SPAN * min(positive)


def _log_axis(ax: Axes, values: Sequence[float]) -> None:
    """A log y axis that drops zeros (no line dives to the axis) and shows at most :data:`LOG_RANGE` below the top."""
    top = max(v for v in values if math.isfinite(v))
    ax.set_yscale("log", nonpositive="mask")
    ax.set_ylim(bottom=max(ax.get_ylim()[0], top * LOG_RANGE))


def families_figure(run: RunData) -> Figure:
    """Every per-layer indicator family of one run, one panel each: the layers that moved most are named, the
    others drawn as thin grey lines; panels whose values span decades use a log axis."""
    per_layer = {name: {layer: s for layer, s in lines.items() if layer} for name, lines in run.panels().items()}
    panels = {name: lines for name, lines in per_layer.items() if lines}  # whole-model series are in kernel_figure
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    figure = new_figure(13, 3.2 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, lines) in zip(axes, sorted(panels.items())):
        top = top_movers(lines)
        for layer in sorted(set(lines) - set(top)):
            ax.plot(lines[layer].steps, lines[layer].values, lw=0.7, color=OTHERS_COLOR)
        for layer in sorted(top):  # in name order, so that a layer keeps its colour where the same layers show
            ax.plot(lines[layer].steps, lines[layer].values, lw=1.4, label=layer)
        log = _log_scale([v for series in lines.values() for v in series.values])
        if log:
            _log_axis(ax, [v for series in lines.values() for v in series.values])
        notes = [f"{len(top)} of {len(lines)} that moved most, others grey"] if len(lines) > len(top) else []
        notes += ["log scale"] if log else []
        ax.set_title(name + (f"\n{', '.join(notes)}" if notes else ""), fontsize=9)
        _step_axis(ax, _step_range([run]), label=False)
        ax.tick_params(labelsize=7)
        _legend(ax, fontsize=6, loc="best")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if not panels:
        axes[0].set_visible(True)
        _empty(axes[0], "no per-layer indicator logged")
    figure.suptitle(f"{run.name}: indicators per layer (x: step, log scale)", fontsize=10)
    return figure


def _heat_map(figure: Figure, ax: Axes, title: str, grid: LayerGrid, norm: Normalize, cmap: str, label: str) -> None:
    from matplotlib.colors import LogNorm

    ax.set_title(title, fontsize=9)
    if not grid.layers:
        _empty(ax)
        ax.set_axis_off()
        return
    floor = norm.vmin if isinstance(norm, LogNorm) else None
    values = [[math.nan if v is None else max(v, floor) if floor else v for v in row] for row in grid.values]
    image = ax.imshow(values, aspect="auto", interpolation="nearest", norm=norm, cmap=cmap)
    ax.set_yticks(range(len(grid.layers)), grid.layers, fontsize=7)
    count = len(grid.steps)
    ticks = list(range(count)) if count <= 12 else sorted({round(i * (count - 1) / 5) for i in range(6)})
    ax.set_xticks(ticks, [str(grid.steps[t]) for t in ticks], fontsize=7)
    ax.set_xlabel("measurement (step)", fontsize=8)
    bar = figure.colorbar(image, ax=ax, fraction=0.03)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def layers_figure(run: RunData) -> Figure:
    """Layer x step heat maps of one run: kernel distance per block (deep models) and per layer (log color), and
    layer balance per pair."""
    from matplotlib.colors import LogNorm, Normalize

    grids = [
        ("kernel distance from init, per layer", run.layer_grid(LAYER_DISTANCE_PREFIX), LogNorm(1e-6, 1), "Blues",
         "S (log)"),
        ("balance (mean rho_k), per layer pair", run.layer_grid(BALANCE_PREFIX), Normalize(-1, 1), "RdBu_r",
         "rho: -1 downstream, +1 upstream"),
    ]
    blocks = run.layer_grid(BLOCK_DISTANCE_PREFIX)
    if blocks.layers:
        grids.insert(0, ("kernel distance from init, per block", blocks, LogNorm(1e-6, 1), "Blues", "S (log)"))
    figure = new_figure(12, 1.6 + sum(0.5 + 0.2 * max(len(grid.layers), 1) for _, grid, *_ in grids))
    axes = figure.subplots(
        len(grids), 1, squeeze=False, height_ratios=[1 + max(len(grid.layers), 1) for _, grid, *_ in grids]
    )[:, 0]
    for ax, (title, grid, norm, cmap, label) in zip(axes, grids):
        _heat_map(figure, ax, title, grid, norm, cmap, label)
    figure.suptitle(f"{run.name}: per-layer view", fontsize=10)
    return figure


def cost_figure(runs: Sequence[RunData]) -> Figure:
    """The monitor's own cost: seconds per measurement and its overhead (its time over the training's), per run."""
    figure = new_figure(10, 3.4)
    seconds_ax, fraction_ax = figure.subplots(1, 2)
    for run in runs:
        for ax, cost_tag in ((seconds_ax, COST_SECONDS), (fraction_ax, COST_FRACTION)):
            series = run.series(cost_tag)
            if series is not None:
                ax.plot(series.steps, series.values, lw=1.3, marker=".", ms=3, label=run.name)
    seconds_ax.set_title("seconds per measurement", fontsize=9)
    fraction_ax.set_title("monitor's time / training time", fontsize=9)
    for ax in (seconds_ax, fraction_ax):
        if not ax.lines:
            _empty(ax)
        _step_axis(ax, _step_range(runs))
        ax.tick_params(labelsize=7)
    _legend(seconds_ax, fontsize=7)
    figure.suptitle("Monitor cost", fontsize=10)
    return figure
