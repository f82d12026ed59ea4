"""The Ray Tune engine of a sweep (``engine="ray"``): a grid search with the point as a function trainable.

This module imports Ray: :func:`regimescope.sweep.engines.ray_engine` imports it when a sweep asks for Ray.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import tune

from regimescope.sweep.engines import ROW_FIELDS, failure_row
from regimescope.sweep.grid import Axis, Value, points
from regimescope.sweep.point import SweepPoint

logger = logging.getLogger(__name__)

INIT_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(ray.init).parameters.items()
    if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
)
"""Options of ``ray.init`` (e.g. ``num_cpus``, ``address``): they start the local Ray instance."""
TUNE_OPTIONS = frozenset(field.name for field in dataclasses.fields(tune.TuneConfig))
"""Options of ``ray.tune.TuneConfig`` (e.g. ``max_concurrent_trials``)."""
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


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` as ``(ray.init options, TuneConfig options)``.

    Raises:
        ValueError: For a name that is neither (with both lists), before Ray starts.
    """
    unknown = sorted(set(options) - INIT_OPTIONS - TUNE_OPTIONS)
    if unknown:
        raise ValueError(
            f"Unknown Ray option(s) {unknown}: ray_options take the arguments of ray.init, which start the local "
            f"instance ({sorted(INIT_OPTIONS)}), and those of ray.tune.TuneConfig ({sorted(TUNE_OPTIONS)})."
        )
    init = {key: value for key, value in options.items() if key in INIT_OPTIONS}
    return init, {key: value for key, value in options.items() if key not in INIT_OPTIONS}


class TrialValues(tune.Callback):
    """Each trial's knob values by its folder, from Ray's own trial records.

    A trial that died before it reported anything (its worker could not unpickle the point, or was killed) has no
    config in its result; the trial itself always has one.

    Attributes:
        by_path: ``trial folder -> knob values``, filled when the experiment ends.
    """

    def __init__(self, axes: Sequence[Axis]) -> None:
        self.names = [axis.name for axis in axes]
        self.by_path: dict[str, dict[str, Value]] = {}

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """Record every trial's knob values."""
        self.by_path = {trial.path: {name: trial.config[name] for name in self.names} for trial in trials}


def trial_row(result: Any, values: dict[str, Value]) -> dict[str, Any]:
    """The sweep's row of one trial: its metrics, or what went wrong."""
    if result.error is not None:
        logger.warning("regimescope sweep: point %s failed in Ray: %s", values, result.error)
        return failure_row(values, result.error)
    metrics = {key: value for key, value in (result.metrics or {}).items() if not key.startswith(_RAY_KEYS)}
    if "point" not in metrics:
        return failure_row(values, RuntimeError("Ray ended the trial before it reported (a time budget or a stop)"))
    return {**dict.fromkeys(ROW_FIELDS), **values, **metrics}  # Ray drops the fields whose value is None


def run_ray(
    point: SweepPoint,
    axes: Sequence[Axis],
    on_point: Callable[[dict], None],
    storage: Path,
    options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """A Ray Tune grid search over ``axes`` with the point as a function trainable returning its final metrics.

    Starts a local Ray instance when none is running (and stops it afterwards). A trial that fails inside Ray (its
    worker cannot import what the point needs, or dies) is reported in its row, with its knob values from Ray's
    trial record, like a point that raised.

    Args:
        point: The point function.
        axes: The grid.
        on_point: Called with each row.
        storage: Where Ray writes its results.
        options: ``ray.init`` options (used only when this call starts the instance) and ``TuneConfig`` options.

    Returns:
        The rows in grid order.
    """
    init, tune_options = split_options(options)
    started = not ray.is_initialized()
    if started:
        ray.init(**{"include_dashboard": False, "log_to_driver": False, **init})
    elif init:
        logger.warning("regimescope sweep: Ray is already running; %s apply only to an instance it starts.", init)
    try:
        values = TrialValues(axes)
        tuner = tune.Tuner(
            point,
            param_space={axis.name: tune.grid_search(list(axis.values)) for axis in axes},
            tune_config=tune.TuneConfig(**tune_options),
            run_config=tune.RunConfig(storage_path=str(storage.absolute()), verbose=0, callbacks=[values]),
        )
        results = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    index = {tuple(point_values.items()): i for i, point_values in enumerate(points(axes))}
    rows: dict[int, dict[str, Any]] = {}
    for result in results:
        trial = values.by_path.get(result.path)  # Ray's result holds no config for a trial that died in Ray
        if trial is None and result.config:
            trial = {axis.name: result.config[axis.name] for axis in axes}
        if trial is None:
            raise RuntimeError(f"Ray returned a result ({result.path}) for a trial whose knob values it did not keep.")
        row = rows[index[tuple(trial.items())]] = trial_row(result, trial)
        on_point(row)
    return [rows[i] for i in sorted(rows)]
