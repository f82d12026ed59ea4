"""The engines that run a sweep's points: in this process, a ``concurrent.futures`` executor, or Ray Tune.

Every engine calls the same :class:`~regimescope.sweep.point.SweepPoint` on each point's values and collects its
metrics dict, in grid order.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from regimescope.sweep.grid import Axis, Value, point_name, points
from regimescope.sweep.point import FORECAST_FIELDS, MEASURED_FIELDS, SweepPoint

logger = logging.getLogger(__name__)


class Engine(enum.Enum):
    """Named engines (an ``concurrent.futures.Executor`` instance is accepted too)."""

    INLINE = "inline"
    """One point after the other in this process; the progress bar counts training steps."""
    PROCESS = "process"
    """A ``ProcessPoolExecutor`` (one torch thread per worker); the task's callables and data must be picklable."""
    RAY = "ray"
    """Ray Tune (``pip install 'regimescope[ray]'``): a grid search of the point as a function trainable, on the
    running Ray instance or a new local one."""


_RAY_KEYS = (
    "config",
    "time_",
    "timestamp",
    "training_iteration",
    "date",
    "hostname",
    "node_ip",
    "pid",
    "done",
    "trial_id",
    "experiment_tag",
    "iterations_since_restore",
    "checkpoint_dir_name",
    "should_checkpoint",
)
"""Bookkeeping fields Ray adds to every result (left out of the sweep's rows)."""
ROW_FIELDS = (*FORECAST_FIELDS, *MEASURED_FIELDS, "point", "error", "seconds")
"""Every metric field of a row (the knob values come from the trial's config)."""


def _single_thread() -> None:
    """Worker initialiser: the points are small, and several workers share the cores."""
    torch.set_num_threads(1)


def run_inline(
    point: SweepPoint,
    grid: Sequence[Mapping[str, Value]],
    on_step: Callable[[], None],
    on_point: Callable[[dict], None],
) -> list[dict[str, Any]]:
    """Each point in turn in this process."""
    rows = []
    for values in grid:
        rows.append(point.run(values, on_step=on_step))
        on_point(rows[-1])
    return rows


def run_executor(
    point: SweepPoint,
    grid: Sequence[Mapping[str, Value]],
    executor: concurrent.futures.Executor,
    on_point: Callable[[dict], None],
) -> list[dict[str, Any]]:
    """Submit every point to ``executor``; rows come back in grid order. A point whose submission or transport
    failed (e.g. a factory that cannot be pickled) is reported in its row like any failed point."""
    futures = {executor.submit(point.run, dict(values)): index for index, values in enumerate(grid)}
    rows: list[dict[str, Any] | None] = [None] * len(grid)
    for future in concurrent.futures.as_completed(futures):
        index = futures[future]
        try:
            rows[index] = future.result()
        except Exception as error:
            logger.warning("regimescope sweep: point %s could not run: %s", dict(grid[index]), error)
            failure = {"point": point_name(grid[index]), "error": f"{type(error).__name__}: {error}"}
            rows[index] = {**dict.fromkeys(ROW_FIELDS), **grid[index], **failure}
        on_point(rows[index])
    return [row for row in rows if row is not None]


def run_process_pool(
    point: SweepPoint, grid: Sequence[Mapping[str, Value]], workers: int | None, on_point: Callable[[dict], None]
) -> list[dict[str, Any]]:
    """A ``ProcessPoolExecutor`` with ``workers`` processes."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_single_thread) as executor:
        return run_executor(point, grid, executor, on_point)


def run_ray(
    point: SweepPoint, axes: Sequence[Axis], on_point: Callable[[dict], None], storage: Path, **tuner_options: Any
) -> list[dict[str, Any]]:
    """A Ray Tune grid search over ``axes`` with the point as a function trainable returning its final metrics.

    Starts a local Ray instance when none is running (and stops it afterwards); Ray's own results go to
    ``storage``; ``tuner_options`` go to ``ray.tune.TuneConfig`` (e.g. ``max_concurrent_trials``), except
    ``num_cpus``, which sizes the local instance.

    Raises:
        ImportError: When Ray Tune is not installed (with the install line).
    """
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise ImportError(
            f"engine='ray' needs Ray Tune, which could not be imported ({error}); install it with "
            "`pip install 'regimescope[ray]'` (or `pip install 'ray[tune]'`)."
        ) from error
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=tuner_options.pop("num_cpus", None), include_dashboard=False, log_to_driver=False)
    try:
        space = {axis.name: tune.grid_search(list(axis.values)) for axis in axes}
        tuner = tune.Tuner(
            point,
            param_space=space,
            tune_config=tune.TuneConfig(**tuner_options),
            run_config=tune.RunConfig(storage_path=str(storage.absolute()), verbose=0),
        )
        results = tuner.fit()
        order = {tuple(values.items()): i for i, values in enumerate(points(axes))}
        rows: list[dict[str, Any]] = []
        for result in results:
            config = {axis.name: result.config[axis.name] for axis in axes}
            if result.error is not None:
                row = {**config, "error": f"{type(result.error).__name__}: {result.error}"}
            else:
                row = dict.fromkeys(ROW_FIELDS)  # Ray drops the fields whose value is None
                row.update({key: value for key, value in result.metrics.items() if not key.startswith(_RAY_KEYS)})
            rows.append(row)
            on_point(row)
        return sorted(rows, key=lambda row: order.get(tuple((a.name, row.get(a.name)) for a in axes), len(order)))
    finally:
        if started:
            ray.shutdown()
