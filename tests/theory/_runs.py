"""Training a model with a monitor attached and keeping what it measured (kernels, outputs, weights, records)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import regimescope as rs
from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.record import Record
from regimescope.scenarios import Setup, train


class Recorder(Indicator):
    """Keeps every snapshot's kernel, outputs and weights (the monitor's own measurements, unprocessed)."""

    name = "recorder"
    needs = frozenset({Need.KERNEL, Need.OUTPUTS, Need.WEIGHTS})
    reference = Reference.NONE

    def __init__(self) -> None:
        self.kernels: dict[int, torch.Tensor] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        self.kernels[current.step] = current.kernel
        self.outputs[current.step] = current.outputs
        self.weights[current.step] = current.weights
        return Record(current.step)


@dataclass
class Run:
    """What a monitored run left behind."""

    sink: rs.MemorySink
    recorder: Recorder
    monitor: rs.RegimeMonitor
    losses: list[float] = field(default_factory=list)

    def series(self, tag: str) -> dict[int, float]:
        """``step -> value`` of a scalar tag."""
        return dict(zip(*self.sink.scalars(tag)))

    def last(self, tag: str) -> float:
        """The last value of a scalar tag."""
        return self.sink.scalars(tag)[1][-1]


def start_and_end(steps: int) -> Callable[[int], bool]:
    """A schedule measuring at step 0 and after the last step only, for runs read only through final values that
    compare with the initialisation (the training, and so those values, are the same whatever the schedule)."""
    return lambda step: step in (0, steps)


def monitored_run(
    setup: Setup,
    *,
    lr: float | None = None,
    steps: int | None = None,
    dtype: torch.dtype = torch.float64,
    schedule: Callable[[int], bool] | None = None,
    every: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    batch: Callable[[int], torch.Tensor] | None = None,
    after_backward: Callable[[int], None] | None = None,
) -> Run:
    """Train ``setup`` by gradient descent (or ``optimizer``) with a monitor and a :class:`Recorder` attached.

    Args:
        setup: The built model, data, loss weight and probe.
        lr: Step size (default ``setup.lr``).
        steps: Steps (default ``setup.steps``).
        dtype: The monitor's compute dtype.
        schedule: When to measure (default: ``LogThenEvery(every)``).
        every: Regular interval of the default schedule (default: ``steps // 16``).
        optimizer: Replaces plain SGD.
        batch: ``step -> indices`` of a minibatch (default: the full batch).
        after_backward: Called with the step number after the backward pass, before the optimizer step.
    """
    steps = setup.steps if steps is None else steps
    optimizer = optimizer or torch.optim.SGD(setup.model.parameters(), lr=setup.lr if lr is None else lr)
    recorder, sink = Recorder(), rs.MemorySink()
    monitor = rs.RegimeMonitor(
        setup.model,
        setup.probe,
        optimizer=optimizer,
        sinks=[sink],
        schedule=schedule or rs.LogThenEvery(every or max(1, steps // 16)),
        indicators=[*default_indicators(), recorder],
        dtype=dtype,
        max_overhead=None,  # theory checks measure on a fixed schedule
    )
    run = Run(sink, recorder, monitor)
    with monitor:
        run.losses = train(setup, optimizer, steps=steps, batch=batch, after_backward=after_backward)
    return run
