"""Shared by minimal_model.py and lambda_balanced.py: train with a monitor, compare with the exact flow, plot.

The monitor measures the kernel distance ``S(K_0, K_t)`` and the kernel growth ``|K_t| / |K_0|`` at its scheduled
steps; a callback sink evaluates the function on the probe at the same steps. Gradient descent with step ``lr``
follows gradient flow at time ``t = steps * lr``, where the exact solution is evaluated.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import regimescope as rs

QUANTITIES = {
    "distance": "kernel distance S(K_0, K_t)",
    "growth": "kernel growth |K_t| / |K_0|",
    "fit": "fitted fraction <f_t, f*> / |f*|^2",
}
"""The compared quantities and their axis labels."""


@dataclass
class Trajectory:
    """One initialisation: what the monitor measured and what the exact solution says, over time.

    Attributes:
        label: Legend entry, e.g. ``"delta = 0"``.
        times: Gradient-flow times of the measurements.
        measured: ``quantity -> values at times`` from the monitor.
        exact: ``quantity -> values at times`` from the exact solution.
        dense_times: A fine time grid for the exact curves.
        dense: ``quantity -> exact values on dense_times``.
    """

    label: str
    times: np.ndarray
    measured: dict[str, np.ndarray]
    exact: dict[str, np.ndarray]
    dense_times: np.ndarray
    dense: dict[str, np.ndarray]

    def worst_error(self) -> dict[str, float]:
        """Largest relative gap between measured and exact, per quantity (floor 1e-12 on tiny exact values)."""
        return {
            name: float(
                np.max(np.abs(self.measured[name] - self.exact[name]) / np.maximum(np.abs(self.exact[name]), 1e-12))
            )
            for name in QUANTITIES
        }


@dataclass
class Measured:
    """What one monitored run recorded: times and the three quantities (the function as outputs)."""

    times: np.ndarray
    distance: np.ndarray
    growth: np.ndarray
    outputs: list[np.ndarray]


def train_with_monitor(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_weight: float, lr: float, steps: int
) -> Measured:
    """Gradient descent on ``loss_weight * |f(x) - y|^2 / 2`` with a float64 monitor attached (~35 measurements)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    memory = rs.MemorySink()
    outputs: dict[int, np.ndarray] = {}

    def keep_outputs(record: rs.Record) -> None:
        with torch.no_grad():
            outputs[record.step] = model(x).numpy().copy()

    monitor = rs.RegimeMonitor(
        model,
        rs.Probe(x, y),
        optimizer=optimizer,
        sinks=[memory, rs.CallbackSink(keep_outputs)],
        schedule=rs.LogThenEvery(max(1, steps // 20)),
        dtype=torch.float64,
        max_overhead=None,  # the comparison with the exact solution needs every scheduled measurement
    )
    with monitor:
        for _ in range(steps):
            loss = loss_weight * 0.5 * (model(x) - y).square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    steps_measured, distance = memory.scalars("regimescope/kernel/distance_from_init")
    _, growth = memory.scalars("regimescope/kernel/norm_ratio")
    return Measured(
        times=np.array(steps_measured) * lr,
        distance=np.array(distance),
        growth=np.array(growth),
        outputs=[outputs[step] for step in steps_measured],
    )


def exact_kernel_at(solution: Any, x: np.ndarray) -> Callable[[float], tuple[float, float, np.ndarray]]:
    """``t -> (S(K_0, K_t), |K_t| / |K_0|, f_t on x)`` of an exact solution (``solution.at(t)`` with
    ``.kernel(x)`` and ``.function(x)``), the ``exact_at`` that :func:`trajectory` takes."""
    k_0 = solution.at(0.0).kernel(x)

    def exact_at(t: float) -> tuple[float, float, np.ndarray]:
        state = solution.at(t)
        k_t = state.kernel(x)
        distance = 1 - (k_0 * k_t).sum() / (np.linalg.norm(k_0) * np.linalg.norm(k_t))
        return max(distance, 0.0), np.linalg.norm(k_t) / np.linalg.norm(k_0), state.function(x)

    return exact_at


def trajectory(
    label: str,
    measured: Measured,
    exact_at: Callable[[float], tuple[float, float, np.ndarray]],
    best_fit: np.ndarray,
    horizon: float,
) -> Trajectory:
    """Pair a monitored run with its exact solution.

    Args:
        label: Legend entry.
        measured: The monitored run.
        exact_at: ``t -> (S(K_0, K_t), |K_t| / |K_0|, f_t on the probe)`` of the exact solution.
        best_fit: ``f*``, the least-squares fit on the probe (the fitted fraction's reference).
        horizon: Last time of the dense exact curve.
    """

    def fitted(function: np.ndarray) -> float:
        return float((function.ravel() @ best_fit.ravel()) / (best_fit.ravel() @ best_fit.ravel()))

    def exact(times: np.ndarray) -> dict[str, np.ndarray]:
        values = [exact_at(float(t)) for t in times]
        return {
            "distance": np.array([v[0] for v in values]),
            "growth": np.array([v[1] for v in values]),
            "fit": np.array([fitted(v[2]) for v in values]),
        }

    dense_times = np.geomspace(max(measured.times[1], 1e-4), horizon, 200)
    return Trajectory(
        label=label,
        times=measured.times,
        measured={
            "distance": measured.distance,
            "growth": measured.growth,
            "fit": np.array([fitted(f) for f in measured.outputs]),
        },
        exact=exact(measured.times),
        dense_times=dense_times,
        dense=exact(dense_times),
    )


def plot(trajectories: list[Trajectory], out: Path, title: str) -> None:
    """Save measured (markers) against exact (lines) for every quantity, one colour per initialisation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(QUANTITIES), figsize=(5.2 * len(QUANTITIES), 4.2))
    for index, item in enumerate(trajectories):
        colour = f"C{index}"
        for axis, name in zip(axes, QUANTITIES):
            axis.plot(item.dense_times, item.dense[name], color=colour, linewidth=1.6, label=f"{item.label} exact")
            later = item.times > 0
            axis.plot(
                item.times[later],
                item.measured[name][later],
                "o",
                color=colour,
                markersize=4,
                markerfacecolor="none",
                label=f"{item.label} monitor",
            )
    for axis, (name, text) in zip(axes, QUANTITIES.items()):
        axis.set_xscale("log")
        axis.set_xlabel("time t = steps * lr")
        axis.set_title(text)
        if name != "fit":
            axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main(
    argv: list[str] | None,
    description: str,
    default_out: str,
    run: Callable[[bool], list[Trajectory]],
    title: str,
    label_width: int,
) -> list[Trajectory]:
    """An example's command line: run the comparison, save the plot, print the largest measured-vs-exact gaps.

    Args:
        argv: Command-line arguments (``--out``, ``--quick``).
        description: The ``--help`` description.
        default_out: PNG written when ``--out`` is not given.
        run: ``quick -> trajectories``.
        title: Plot title.
        label_width: Column width of the labels in the printed gaps.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path(default_out), help="PNG to write")
    parser.add_argument("--quick", action="store_true", help="4x coarser step (a few seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    trajectories = run(args.quick)
    plot(trajectories, args.out, title)
    for item in trajectories:
        gaps = ", ".join(f"{name} {gap:.2%}" for name, gap in item.worst_error().items())
        print(f"{item.label:<{label_width}} largest gap to the exact solution: {gaps}")
    print(f"plot written to {args.out}")
    return trajectories
