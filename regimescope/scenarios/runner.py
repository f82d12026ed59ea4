"""Running a scenario: full-batch gradient descent with a monitor attached, and what the monitor said about it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from regimescope.forecast import Forecast, confirmed
from regimescope.monitor import RegimeMonitor
from regimescope.record import Record
from regimescope.scenarios.scenario import Scenario, Setup
from regimescope.schedule import LogThenEvery
from regimescope.sinks import MemorySink, Sink
from regimescope.tags import KERNEL_DISTANCE, KERNEL_RELATIVE_CHANGE, LABELS, REGIME_LABEL, REGIME_SCORE

EARLY_FRACTION = 0.02
"""The "early" label of a run is the one at the last measurement within this fraction of its steps."""
MEASUREMENTS = 32
"""About how many regular measurements a run gets (the schedule also measures at the powers of two below them)."""


def loss(setup: Setup, index: slice | torch.Tensor = slice(None)) -> torch.Tensor:
    """``L = loss_weight * |f(X) - Y|_F^2 / 2`` on the examples ``index`` of the training set."""
    residual = setup.model(setup.inputs[index]) - setup.targets[index]
    return setup.loss_weight * 0.5 * residual.square().sum()


def train(
    setup: Setup,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int | None = None,
    batch: Callable[[int], torch.Tensor] | None = None,
    after_backward: Callable[[int], None] | None = None,
    callback: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``setup.model`` on :func:`loss` with ``optimizer`` (a monitor attached to it measures after each step).

    Args:
        setup: The built scenario.
        optimizer: Optimiser over the model's parameters.
        steps: Number of steps (default ``setup.steps``).
        batch: ``step -> indices`` of the examples of step ``step = 0, 1, ...`` (default: the full batch).
        after_backward: Called with ``step`` after the backward pass, before the optimizer step.
        callback: Called with ``step + 1`` (the number of updates so far) after each optimizer step.

    Returns:
        The loss of each step, before its update.
    """
    losses = []
    for step in range(setup.steps if steps is None else steps):
        value = loss(setup, slice(None) if batch is None else batch(step))
        optimizer.zero_grad()
        value.backward()
        if after_backward is not None:
            after_backward(step)
        optimizer.step()
        losses.append(value.item())
        if callback is not None:
            callback(step + 1)
    return losses


@dataclass
class Outcome:
    """What the monitor said about a scenario's run.

    Attributes:
        scenario: The scenario.
        label: Final label.
        score: Final richness score.
        early_label: Label at the last measurement within the first ``EARLY_FRACTION`` of the steps.
        distance: Final ``S(K_0, K_T)``.
        change: Final ``|K_T - K_0| / |K_0|``.
        forecast: The monitor's step-0 forecast (``None`` when it made none).
        explanation: The monitor's explanation of the final label.
        losses: The training loss :func:`loss` after ``t = 0 ... steps`` updates.
        seconds: Wall time of the run, building, training and measurements included.
        history: Every record of the run.
        model: The trained model.
    """

    scenario: Scenario
    label: str
    score: float
    early_label: str
    distance: float
    change: float
    forecast: Forecast | None
    explanation: str
    losses: list[float] = field(repr=False)
    seconds: float
    history: list[Record] = field(repr=False)
    model: nn.Module = field(repr=False)

    @property
    def agrees(self) -> bool:
        """Whether the verdict agrees with theory."""
        return self.scenario.theory.agrees(self.early_label, self.label)

    @property
    def forecast_label(self) -> str | None:
        """The step-0 forecast's label (``None`` without a forecast)."""
        return None if self.forecast is None else self.forecast.label

    @property
    def forecast_confirmed(self) -> bool:
        """Whether the run's verdicts confirmed the step-0 forecast (:func:`~regimescope.forecast.confirmed`)."""
        return confirmed(self.forecast_label, self.early_label, self.label)

    def final(self, tag_name: str) -> float:
        """The last recorded value of a scalar tag."""
        return next(r.scalars[tag_name] for r in reversed(self.history) if tag_name in r.scalars)


def run_scenario(
    scenario: Scenario,
    *,
    dtype: torch.dtype = torch.float32,
    measurements: int = MEASUREMENTS,
    sinks: Sequence[Sink] = (),
    logdir: str | Path | None = None,
    callback: Callable[[int], None] | None = None,
    max_overhead: float | None = None,
) -> Outcome:
    """Build, train by gradient descent with a :class:`~regimescope.monitor.RegimeMonitor` attached, and collect
    the verdicts.

    Args:
        scenario: The scenario.
        dtype: The monitor's compute dtype.
        measurements: About how many regular measurements: the schedule is ``LogThenEvery(steps // measurements)``,
            which also measures at the powers of two below the interval.
        sinks: Extra sinks (e.g. a TensorBoard sink).
        logdir: The monitor's log folder (``None``: none).
        callback: Called with the number of updates so far after each optimizer step (e.g. a progress bar).
        max_overhead: The monitor's overhead budget; ``None`` (calibration's choice) measures on schedule, so that
            runs are compared at the same steps whatever the measurements cost.

    Returns:
        The outcome.
    """
    start = time.perf_counter()
    setup = scenario.build()
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=setup.lr)
    memory = MemorySink()
    monitor = RegimeMonitor(
        setup.model,
        setup.probe,
        optimizer=optimizer,
        logdir=logdir,
        sinks=[memory, *sinks],
        schedule=LogThenEvery(max(1, setup.steps // measurements)),
        dtype=dtype,
        max_overhead=max_overhead,
    )
    with monitor:
        losses = train(setup, optimizer, callback=callback)
    explanation = monitor.explain()  # after close(), which may take a measurement the budget deferred
    forecast = monitor.forecast
    with torch.no_grad():
        losses.append(loss(setup).item())
    labelled = [r for r in memory.records if REGIME_LABEL in r.scalars]
    early_steps = [r for r in labelled if r.step <= EARLY_FRACTION * setup.steps] or labelled[:1]
    last = labelled[-1]
    return Outcome(
        scenario=scenario,
        label=LABELS[int(last.scalars[REGIME_LABEL])],
        score=last.scalars[REGIME_SCORE],
        early_label=LABELS[int(early_steps[-1].scalars[REGIME_LABEL])],
        distance=last.scalars[KERNEL_DISTANCE],
        change=last.scalars[KERNEL_RELATIVE_CHANGE],
        forecast=forecast,
        explanation=explanation,
        losses=losses,
        seconds=time.perf_counter() - start,
        history=list(memory.records),
        model=setup.model,
    )
