"""A calibration scenario: a model whose regime theory predicts, trained by gradient descent with a monitor attached."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from regimescope.forecast import Forecast, confirmed
from regimescope.monitor import RegimeMonitor
from regimescope.probe import Probe
from regimescope.record import Record, tag
from regimescope.schedule import LogThenEvery
from regimescope.sinks import MemorySink, Sink
from regimescope.verdict.labeler import LABELS

DISTANCE = tag("kernel", "distance_from_init")
CHANGE = tag("kernel", "relative_change")
LABEL = tag("regime", "label")
SCORE = tag("regime", "score")
EARLY_FRACTION = 0.02
"""The "early" label of a run is the one at the last measurement within this fraction of its steps."""


class Theory(enum.Enum):
    """What theory predicts for a run (``str()`` gives the value)."""

    LAZY = "lazy"
    """The NTK barely moves for the whole run."""
    RICH = "rich"
    """The NTK moves: it turns, or it grows by orders of magnitude from a small initialisation."""
    DELAYED_RICH = "delayed rich"
    """Lazy first (the large layer fits on fixed features), rich once the small layer has grown."""
    LAZY_EARLY = "lazy early"
    """Lazy over the first part of the run; theory says nothing definite about its end."""

    def __str__(self) -> str:
        """The plain value, for tables."""
        return self.value

    def agrees(self, early: str, final: str) -> bool:
        """Whether the labels at the early checkpoint and at the end agree with this prediction."""
        if self is Theory.LAZY:
            return early == "lazy" and final == "lazy"
        if self is Theory.RICH:
            return final == "rich"
        if self is Theory.DELAYED_RICH:
            return early == "lazy" and final == "rich"
        return early == "lazy"


class Signature(enum.Enum):
    """Which kernel evidence theory says carries a rich run (used to calibrate each evidence's ramp)."""

    DIRECTION = "direction"
    """The kernel turns: ``S(K_0, K_t)`` grows towards 1."""
    SCALE = "scale"
    """The kernel grows by orders of magnitude from a small initialisation: ``|K_t - K_0| / |K_0| >> 1``."""


@dataclass
class Setup:
    """A built scenario, ready to train.

    Attributes:
        model: The model (float64, initialised).
        inputs: Training inputs (one full batch).
        targets: Training targets, ``(n, outputs)``.
        lr: Gradient-descent step size.
        steps: Number of steps.
        loss_weight: ``L = loss_weight * |f(X) - Y|_F^2 / 2``.
        probe: The monitor's probe.
    """

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    lr: float
    steps: int
    loss_weight: float
    probe: Probe


@dataclass(frozen=True)
class Scenario:
    """A run whose regime theory predicts.

    Attributes:
        name: Short unique name.
        section: Where theory.md states the prediction, e.g. ``"6.3"``.
        description: One line for tables.
        theory: The prediction.
        build: Builds the run (deterministic).
        signatures: For rich runs, the kernel evidence theory says carries the richness.
    """

    name: str
    section: str
    description: str
    theory: Theory
    build: Callable[[], Setup]
    signatures: frozenset[Signature] = frozenset()


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
    measurements: int = 32,
    sinks: Sequence[Sink] = (),
    logdir: str | None = None,
) -> Outcome:
    """Build, train with a :class:`~regimescope.monitor.RegimeMonitor` attached, and collect the verdicts.

    Args:
        scenario: The scenario.
        dtype: The monitor's compute dtype.
        measurements: About how many regular measurements (the monitor's default schedule also measures at the
            powers of two below the interval).
        sinks: Extra sinks (e.g. a TensorBoard sink).
        logdir: The monitor's log folder (``None``: none).

    Returns:
        The outcome.
    """
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
        max_overhead=None,  # calibration compares curves measured at the same steps, whatever they cost
    )
    with monitor:
        for _ in range(setup.steps):
            residual = setup.model(setup.inputs) - setup.targets
            loss = setup.loss_weight * 0.5 * residual.square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        explanation = monitor.explain()
        forecast = monitor.forecast
    labelled = [r for r in memory.records if LABEL in r.scalars]
    early_steps = [r for r in labelled if r.step <= EARLY_FRACTION * setup.steps] or labelled[:1]
    last = labelled[-1]
    return Outcome(
        scenario=scenario,
        label=LABELS[int(last.scalars[LABEL])],
        score=last.scalars[SCORE],
        early_label=LABELS[int(early_steps[-1].scalars[LABEL])],
        distance=last.scalars[DISTANCE],
        change=last.scalars[CHANGE],
        forecast=forecast,
        explanation=explanation,
        history=list(memory.records),
        model=setup.model,
    )
