"""Running a real-architecture scenario with a monitor attached, and what the monitor said about it."""

from __future__ import annotations

from dataclasses import dataclass, field

from regimescope.monitor import RegimeMonitor
from regimescope.record import Record
from regimescope.scenarios.architectures.catalogue import Scenario
from regimescope.scenarios.architectures.size import Size
from regimescope.scenarios.architectures.training import optimizer_for, step
from regimescope.schedule import LogThenEvery
from regimescope.sinks import MemorySink
from regimescope.tags import KERNEL_DISTANCE, KERNEL_RELATIVE_CHANGE, LABELS, REGIME_LABEL, REGIME_SCORE


@dataclass
class Outcome:
    """What the monitor said about a scenario's run.

    Attributes:
        scenario: The scenario.
        steps: Training steps monitored.
        label: Final label.
        score: Final richness score.
        distance: Final ``S(K_0, K_T)``.
        change: Final ``|K_T - K_0| / |K_0|``.
        losses: The training loss at every step (before loss scaling).
        explanation: ``monitor.explain()`` at the end.
        history: Every record.
    """

    scenario: Scenario
    steps: int
    label: str
    score: float
    distance: float
    change: float
    losses: list[float] = field(repr=False)
    explanation: str = field(repr=False)
    history: list[Record] = field(repr=False)

    @property
    def agrees(self) -> bool:
        """Whether the final label is theory's."""
        return self.label == self.scenario.theory.value

    @property
    def final_loss(self) -> float:
        """The mean training loss of the last 10 steps."""
        return sum(self.losses[-10:]) / len(self.losses[-10:])

    def final(self, tag: str) -> float:
        """The last recorded value of a scalar tag."""
        return next(r.scalars[tag] for r in reversed(self.history) if tag in r.scalars)


def run_scenario(scenario: Scenario, size: Size) -> Outcome:
    """Build ``scenario`` at ``size`` and train it with a monitor attached at the start of the monitored run."""
    run = scenario.build(size)
    optimizer = optimizer_for(run)
    memory = MemorySink()
    schedule = LogThenEvery(size.every, early=size.early)
    monitor = RegimeMonitor(
        run.model, run.task.probe, optimizer=optimizer, sinks=[memory], schedule=schedule, max_overhead=None
    )
    with monitor:
        run.model.train()
        losses = [step(run, optimizer, index, seed=0) for index in range(size.steps)]
        explanation = monitor.explain()
    last = next(r.scalars for r in reversed(memory.records) if REGIME_LABEL in r.scalars)
    return Outcome(
        scenario=scenario,
        steps=size.steps,
        label=LABELS[int(last[REGIME_LABEL])],
        score=last[REGIME_SCORE],
        distance=last[KERNEL_DISTANCE],
        change=last[KERNEL_RELATIVE_CHANGE],
        losses=losses,
        explanation=explanation,
        history=list(memory.records),
    )
