"""``rs.sweep``: the forecast phase diagram from initialisation, then the measured one from short monitored runs."""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import pickle
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from regimescope.probe import Probe
from regimescope.progress import Progress
from regimescope.sweep.boundary import forecast_boundary, measured_boundary
from regimescope.sweep.engines import Engine, ray_engine, run_executor, run_inline, run_process_pool
from regimescope.sweep.grid import Axis, Value, parse_grid, points
from regimescope.sweep.point import FORECAST_FIELDS, SweepPoint
from regimescope.sweep.task import SweepTask, default_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FIGURE_NAME = "phase_diagram.png"
PAGE_NAME = "index.html"
TABLE_NAME = "points.json"


@dataclass
class SweepResult:
    """What a sweep found.

    Attributes:
        table: One dict per point, in grid order (``pandas.DataFrame(result.table)`` works): the knob values,
            ``point`` (its name), the forecast fields (``forecast``, ``forecast_ratio``, ``forecast_fast``), the
            measured fields (``label``, ``score``, ``distance``, ``change``, ``growth``, ``time_to_rich``,
            ``loss_start``, ``loss_end``), ``seconds`` and ``error`` (``None`` unless the point failed).
        axes: The grid's knobs.
        steps: Training steps per point (``None`` for a forecast-only sweep).
        files: What was written: ``figure``, ``page``, ``table`` (under ``out``) and ``logdir``.
    """

    table: list[dict[str, Any]]
    axes: tuple[Axis, ...]
    steps: int | None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The rows of points that failed."""
        return [row for row in self.table if row.get("error") is not None]

    def forecast_boundary(self, knob: str, **where: Value) -> list[float]:
        """Where the forecast changes side along ``knob`` (other knobs fixed by ``where``)."""
        return forecast_boundary(self.table, knob, where)

    def measured_boundary(self, knob: str, **where: Value) -> list[float]:
        """Where the measured score crosses the middle of the transitional band along ``knob``."""
        return measured_boundary(self.table, knob, where)

    def figure(self) -> Figure:
        """The phase-diagram figure (needs matplotlib)."""
        from regimescope.sweep.figure import phase_figure

        return phase_figure(self.table, self.axes, self.steps)


def _check_report_dependencies() -> None:
    from regimescope.report.figures import new_figure

    new_figure(1, 1)  # raises the ImportError with the install line before any training


def _merge(forecasts: Sequence[Mapping[str, Any]], measured: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The measured rows, with the forecast stage's fields where the measured run has none (e.g. it failed)."""
    rows = []
    for early, late in zip(forecasts, measured):
        row = dict(late)
        for key in FORECAST_FIELDS:
            if row.get(key) is None:
                row[key] = early.get(key)
        rows.append(row)
    return rows


def _write_outputs(result: SweepResult, out: Path, intro: str) -> None:
    from regimescope.sweep.page import sweep_page

    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    result.figure().savefig(buffer, format="png")
    png = buffer.getvalue()
    result.files["figure"] = out / FIGURE_NAME
    result.files["figure"].write_bytes(png)
    result.files["page"] = out / PAGE_NAME
    result.files["page"].write_text(sweep_page(result.table, result.axes, png, intro), encoding="utf-8")
    result.files["table"] = out / TABLE_NAME
    result.files["table"].write_text(json.dumps(result.table, indent=1, default=str), encoding="utf-8")


def _check_picklable(point: SweepPoint) -> None:
    """Fail before training when another process cannot receive the point (a lambda or local function inside)."""
    try:
        pickle.dumps(point)
    except Exception as error:  # pickling raises several types: each means "cannot be sent"
        raise ValueError(
            f"This engine runs points in other processes, but the task cannot be pickled ({type(error).__name__}: "
            f"{error}). Define make_model, make_optimizer and train_step as module-level functions (not lambdas or "
            "local functions), or use engine='inline'."
        ) from error


def _engine(engine: Engine | str | concurrent.futures.Executor) -> Engine | concurrent.futures.Executor:
    named = {member.value: member for member in Engine}
    if isinstance(engine, concurrent.futures.ThreadPoolExecutor):
        raise TypeError(
            "`engine` is a ThreadPoolExecutor, but points seed and draw from torch's global random state, which "
            "threads share: concurrent points would start from different weights. Use engine='process' or a "
            "ProcessPoolExecutor."
        )
    if isinstance(engine, (Engine, concurrent.futures.Executor)):
        return engine
    if engine not in named:
        raise ValueError(
            f"`engine` must be one of {list(named)} or a concurrent.futures.Executor; received {engine!r}."
        )
    return named[engine]


def sweep(
    make_model: Callable[..., nn.Module],
    grid: Mapping[str, Sequence[Value]],
    *,
    make_optimizer: Callable[..., torch.optim.Optimizer],
    data: Iterable[Any],
    probe: Probe | None = None,
    train_step: Callable[..., Any] = default_step,
    steps: int = 200,
    measure: bool = True,
    engine: Engine | str | concurrent.futures.Executor = Engine.INLINE,
    workers: int | None = None,
    logdir: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    base_width: int | None = None,
    monitor_options: Mapping[str, Any] | None = None,
    ray_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Draw the phase diagram of a model over up to three knobs: forecast from initialisation, then measured.

    For every point of the grid the model is built by ``make_model``, the built-in knobs
    (:data:`~regimescope.sweep.builtins.BUILTIN_KNOBS`: ``init_scale``, ``balance``, ``delta``, ``output_scale``; and
    ``parametrisation`` with ``width``) are applied to it, and grid keys reach the factories that name them (see
    :class:`~regimescope.sweep.task.SweepTask`). Then:

    (a) the forecast (:func:`~regimescope.forecast.forecast_regime`) of each point from its initialisation alone, in
        this process (seconds);
    (b) unless ``measure=False``, a run of ``steps`` training steps per point with a
        :class:`~regimescope.monitor.RegimeMonitor` attached, giving the final richness score and label, the kernel
        distance and growth and the first step labelled rich.

    Each point is :class:`~regimescope.sweep.point.SweepPoint`, a plain function of the knob values, run by the
    chosen engine; a point that fails is reported in its row (``error``) and in the figure, never fatal.

    Args:
        make_model: Builds the model at initialisation, taking the grid keys it names (e.g. ``width``).
        grid: ``{knob: [values]}``, at most three knobs.
        make_optimizer: ``make_optimizer(model, ...)`` taking the grid keys it names (e.g. ``lr``).
        data: Training batches (a ``DataLoader`` or a list), cycled through.
        probe: The monitor's probe; drawn from ``data`` (64 examples) when ``None``. It needs targets for the
            forecast.
        train_step: ``train_step(model, optimizer, batch, ...) -> loss``; the default fits ``(inputs, targets)``
            batches with MSE (float targets) or cross-entropy (labels).
        steps: Training steps per point.
        measure: ``False`` draws the forecast diagram only.
        engine: ``"inline"`` (this process), ``"process"`` (a process pool of ``workers``), ``"ray"`` (Ray Tune,
            with ``ray_options``), or a ``concurrent.futures.Executor`` running processes
            (a thread pool is refused: the points' seeding uses torch's global random state, which threads share).
        workers: Processes of the ``"process"`` engine (default: the CPU count).
        logdir: Where each point's monitor writes (``<logdir>/<point>``) and the HParams dashboard entries go (a
            forecast-only sweep writes its forecast metrics there, at step 0); ``None`` writes no logs.
        out: Folder for ``phase_diagram.png``, ``index.html`` (the report-style page) and ``points.json``, written
            after the forecast stage (so the forecast diagram is there within seconds) and again at the end;
            ``None`` writes none.
        seed: Torch seed before each point's build and run (so every point starts from the same draw).
        base_width: Base width of the NTK/muP parametrisations (default: the grid's smallest width).
        monitor_options: Keyword arguments for each point's ``RegimeMonitor`` (e.g. ``every``, ``max_overhead``,
            ``dtype``, ``alert_rules``), passed through. By default a point measures about 16 times plus the early
            log-spaced steps, runs ``strict`` (a failing measurement fails the point) and raises no alerts.
        ray_options: Options of ``engine="ray"``: arguments of ``ray.init`` (e.g. ``num_cpus``, ``address``),
            used to start a local Ray instance when none runs, and of ``ray.tune.TuneConfig`` (e.g.
            ``max_concurrent_trials``); any other name is refused before anything runs. Ray's own results go to
            ``<logdir>/ray``.
        progress: A progress bar; by default one on standard error when it is a terminal.

    Returns:
        The table, the boundaries and the files written.

    Raises:
        ValueError / TypeError: Before any point runs, for a grid, task or Ray option that cannot work (the
            message says how to fix it).
        ImportError: When ``out`` is given without matplotlib, ``logdir`` without tensorboard, or ``engine="ray"``
            without Ray.
    """
    axes = parse_grid(grid)
    chosen = _engine(engine)
    if probe is None:
        probe = Probe.from_loader(data)
    options = dict(monitor_options or {})
    task = SweepTask(make_model, make_optimizer, data, probe, train_step, steps, seed, base_width, options)
    task.check(axes)
    if out is not None:
        _check_report_dependencies()
    if chosen is Engine.RAY:
        ray_runner = ray_engine()
        ray_runner.split_options(ray_options or {})  # an unknown option fails before the forecasts and Ray start
    grid_points = points(axes)
    bar = progress if progress is not None else Progress(len(grid_points) * (1 + (steps if measure else 0)), "sweep")
    try:
        forecaster = SweepPoint(task, axes, measure=False)
        forecasts = []
        for values in grid_points:
            forecasts.append(forecaster.run(values))
            bar.update(detail=f"forecast {forecasts[-1]['point']}")
        table = forecasts
        if out is not None and measure:  # the forecast diagram is there within seconds, before any training
            _write_outputs(
                SweepResult(forecasts, axes, None), Path(out), "Forecast only; the measured diagram follows."
            )
        if measure:
            point = SweepPoint(task, axes, logdir=logdir)
            if chosen is not Engine.INLINE:
                _check_picklable(point)

            def done(row: Mapping[str, Any]) -> None:
                bar.update(0 if chosen is Engine.INLINE else steps, detail=str(row.get("point", "")))

            if chosen is Engine.INLINE:
                measured = run_inline(point, grid_points, bar.update, done)
            elif chosen is Engine.PROCESS:
                measured = run_process_pool(point, grid_points, workers, done)
            elif chosen is Engine.RAY:
                storage = Path(logdir) / "ray" if logdir is not None else Path(tempfile.mkdtemp(prefix="regimescope-"))
                measured = ray_runner.run_ray(point, axes, done, storage, ray_options or {})
            else:
                measured = run_executor(point, grid_points, chosen, done)
            table = _merge(forecasts, measured)
    finally:
        if progress is None:
            bar.close()
    result = SweepResult(table, axes, steps if measure else None)
    failed = result.failed
    if failed:
        logger.warning("regimescope sweep: %d of %d points failed (see their `error`).", len(failed), len(table))
    if logdir is not None:
        from regimescope.sweep.hparams import FORECAST_METRICS, METRICS, write_hparams

        named = SweepPoint(task, axes, logdir=logdir)
        folders = [named.folder({axis.name: row[axis.name] for axis in axes}) for row in table]
        keys, step = (tuple(METRICS), steps) if measure else (FORECAST_METRICS, 0)  # the forecast is at step 0
        write_hparams(Path(logdir), axes, table, folders, step, keys)
        result.files["logdir"] = Path(logdir)
    if out is not None:
        intro = (
            f"{len(table)} point(s) over {', '.join(a.name for a in axes)}"
            + (f", {steps} training steps each" if measure else ", forecast only")
            + (f"; {len(failed)} failed" if failed else "")
            + ". Generated by <code>regimescope sweep</code>."
        )
        _write_outputs(result, Path(out), intro)
    return result
