"""``regimescope demo``: the teacher-student scenarios, monitored, with a table of verdicts and what to run next."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from regimescope.progress import Progress
from regimescope.scenarios import DEMO, MEASUREMENTS, Outcome, Scenario, run_scenario

DEFAULT_LOGDIR = Path("runs") / "regimescope-demo"


def format_table(outcomes: Sequence[Outcome]) -> str:
    """The verdict table printed by the demo: theory's answer, the step-0 forecast, the early and final verdicts."""
    header = (
        f"{'run':<11} {'theory':<11} {'forecast':<13} {'early':<13} {'verdict':<13} {'score':>5} {'S(K0,KT)':>9} "
        f"{'|dK|/|K0|':>10} {'loss':>17} {'time':>6}"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        loss = f"{o.losses[0]:.3g} -> {o.losses[-1]:.3g}"
        lines.append(
            f"{o.scenario.run:<11} {str(o.scenario.theory):<11} {o.forecast_label or '-':<13} {o.early_label:<13} "
            f"{o.label:<13} {o.score:>5.2f} {o.distance:>9.2e} {o.change:>10.2e} {loss:>17} {o.seconds:>5.1f}s"
        )
    lines.append("")
    lines.extend(f"  {o.scenario.run:<11} {o.scenario.description}" for o in outcomes)
    return "\n".join(lines)


def shell_command(program: str, module: str, *args: str | Path) -> str:
    """A command line that runs ``program`` as printed, in a fresh shell.

    The scripts of the running environment (a virtualenv's ``bin/``) are used by their path unless the shell would
    find the same file by name on its ``PATH``; without such a script, ``python -m module`` runs it.

    Args:
        program: The console script, e.g. ``"tensorboard"``.
        module: The module that runs it with ``python -m``, e.g. ``"tensorboard.main"``.
        *args: Its arguments.

    Returns:
        The quoted command line; paths inside the current folder are relative to it.
    """
    script = shutil.which(program, path=str(Path(sys.executable).parent))
    on_path = shutil.which(program)
    if script is not None and not (on_path is not None and Path(on_path).resolve() == Path(script).resolve()):
        head = [_relative(script)]
    elif script is None and on_path is None:
        head = [_relative(sys.executable), "-m", module]
    else:
        head = [program]
    return shlex.join([*head, *(str(arg) for arg in args)])


def _relative(path: str | Path) -> str:
    """``path`` relative to the current folder when it lies inside it, else as given."""
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def total_steps(scenarios: Sequence[Scenario] = DEMO) -> int:
    """Training steps of the demo's runs together (the progress bar's total)."""
    return sum(scenario.build().steps for scenario in scenarios)


def run_demo(logdir: Path | None, quick: bool = False, progress: Progress | None = None) -> list[Outcome]:
    """Run every scenario of :data:`~regimescope.scenarios.DEMO` in order, each with a monitor writing its logs.

    The networks are tiny, so torch runs on one thread (thread hand-offs cost more than they save here); the
    caller's thread count is restored afterwards.

    Args:
        logdir: Folder of the runs' logs (one subfolder per run, named by :attr:`Scenario.run`); ``None`` writes none.
        quick: Measure half as often (the same runs and verdicts, coarser curves).
        progress: Counts training steps (of :func:`total_steps`), when given.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [
            run_scenario(
                scenario,
                logdir=None if logdir is None else logdir / scenario.run,
                measurements=MEASUREMENTS // 2 if quick else MEASUREMENTS,
                callback=None if progress is None else (lambda _step, run=scenario.run: progress.update(detail=run)),
            )
            for scenario in DEMO
        ]
    finally:
        torch.set_num_threads(threads)
