"""The engines that run a sweep's points: in this process, a ``concurrent.futures`` executor, or Ray Tune.

Every engine calls the same :class:`~regimescope.sweep.point.SweepPoint` on each point's values and collects its
metrics dict, in grid order.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import torch

from regimescope.sweep.grid import Value, point_name
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


ROW_FIELDS = (*FORECAST_FIELDS, *MEASURED_FIELDS, "point", "error", "seconds")
"""Every metric field of a row (besides the knob values)."""


def failure_row(values: Mapping[str, Value], error: BaseException) -> dict[str, Any]:
    """The row of a point that an engine could not run (it never returned its metrics): its knob values, its name
    and the error, every metric ``None``."""
    return {
        **dict.fromkeys(ROW_FIELDS),
        **values,
        "point": point_name(values),
        "error": f"{type(error).__name__}: {error}",
    }


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
            rows[index] = failure_row(grid[index], error)
        on_point(rows[index])
    return [row for row in rows if row is not None]


def run_process_pool(
    point: SweepPoint, grid: Sequence[Mapping[str, Value]], workers: int | None, on_point: Callable[[dict], None]
) -> list[dict[str, Any]]:
    """A ``ProcessPoolExecutor`` with ``workers`` processes."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_single_thread) as executor:
        return run_executor(point, grid, executor, on_point)


def ray_engine() -> ModuleType:
    """The Ray Tune engine, :mod:`regimescope.sweep.ray_engine` (imported here: it imports Ray).

    Raises:
        ImportError: When Ray Tune is not installed (with the install line).
    """
    try:
        from regimescope.sweep import ray_engine as engine
    except ImportError as error:
        raise ImportError(
            f"engine='ray' needs Ray Tune, which could not be imported ({error}); install it with "
            "`pip install 'regimescope[ray]'` (or `pip install 'ray[tune]'`)."
        ) from error
    return engine
