"""``regimescope demo``: the GRQ teacher-student runs, monitored, with a table of verdicts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from regimescope.demo.scenarios import SCENARIOS, ScenarioSpec
from regimescope.demo.teacher_student import make_probe
from regimescope.demo.training import make_model, make_optimizer, train
from regimescope.monitor import RegimeMonitor
from regimescope.probe import Probe
from regimescope.progress import Progress
from regimescope.record import tag

DEFAULT_LOGDIR = Path("runs") / "regimescope-demo"


@dataclass(frozen=True)
class DemoResult:
    """The outcome of one demo run, as the table shows it.

    Attributes:
        name: Scenario name (also the run's folder under the logdir).
        description: One-line description of the initialisation.
        expected: The regime theory predicts.
        label: The monitor's final verdict.
        score: The final richness score.
        distance: Final kernel distance from init ``S(K_0, K_T)``.
        change: Final relative kernel change ``|K_T - K_0| / |K_0|``.
        loss: ``(initial, final)`` training loss.
        seconds: Wall time of the run, measurements included.
    """

    name: str
    description: str
    expected: str
    label: str
    score: float
    distance: float
    change: float
    loss: tuple[float, float]
    seconds: float


def run_scenario(spec: ScenarioSpec, logdir: Path | None, quick: bool, progress: Progress | None = None) -> DemoResult:
    """Train one scenario with a monitor attached and summarise its verdict (counting steps on ``progress``)."""
    start = time.perf_counter()
    model = make_model(spec, quick)
    optimizer = make_optimizer(spec, model)
    x, y = make_probe(spec.dim, spec.seed, dtype=next(model.parameters()).dtype)
    monitor = RegimeMonitor(
        model,
        Probe(x, y),
        optimizer=optimizer,
        logdir=None if logdir is None else logdir / spec.name,
        every=spec.measurement_interval(quick),
        max_overhead=None,  # the demo's nets train in microseconds a step: show every scheduled measurement
    )
    with monitor:
        advance = None if progress is None else (lambda _step: progress.update(detail=spec.name))
        _, history = train(spec, quick, model=model, optimizer=optimizer, callback=advance)
        last = monitor.history[-1].scalars
        verdict = monitor.regime
    return DemoResult(
        name=spec.name,
        description=spec.description,
        expected=spec.expected.value,
        label=verdict.label,
        score=verdict.score,
        distance=last[tag("kernel", "distance_from_init")],
        change=last[tag("kernel", "relative_change")],
        loss=(history.initial_loss, history.final_loss),
        seconds=time.perf_counter() - start,
    )


def format_table(results: list[DemoResult]) -> str:
    """The verdict table printed by the demo."""
    header = f"{'run':<11} {'theory':<11} {'verdict':<13} {'score':>5} {'S(K0,KT)':>9} {'|dK|/|K0|':>10} {'loss':>17} {'time':>6}"
    lines = [header, "-" * len(header)]
    for r in results:
        loss = f"{r.loss[0]:.3g} -> {r.loss[1]:.3g}"
        lines.append(
            f"{r.name:<11} {r.expected:<11} {r.label:<13} {r.score:>5.2f} {r.distance:>9.2e} {r.change:>10.2e} "
            f"{loss:>17} {r.seconds:>5.1f}s"
        )
    lines.append("")
    lines.extend(f"  {r.name:<11} {r.description}" for r in results)
    return "\n".join(lines)


def total_steps(quick: bool) -> int:
    """Training steps of all demo runs together (the progress bar's total)."""
    return sum(spec.budget(quick).steps for spec in SCENARIOS)


def run_demo(logdir: Path | None, quick: bool, progress: Progress | None = None) -> list[DemoResult]:
    """Run every scenario of :data:`~regimescope.demo.scenarios.SCENARIOS` in order.

    The networks are tiny, so torch runs on one thread (thread hand-offs cost more than they save here); the
    caller's thread count is restored afterwards.

    Args:
        logdir: Folder of the runs' logs (one subfolder per scenario); ``None`` writes none.
        quick: Use the quick budgets.
        progress: Counts training steps (of :func:`total_steps`), when given.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [run_scenario(spec, logdir, quick, progress) for spec in SCENARIOS]
    finally:
        torch.set_num_threads(threads)
