"""One point of a sweep as a plain function of its knob values: forecast at step 0, then a short monitored run.

``SweepPoint(task)(values)`` returns a flat dict of metrics, so any engine can run the grid: a loop, a
``concurrent.futures`` pool, Ray Tune (a function trainable returning its final metrics) or Optuna (called with a
trial, it suggests the values from the grid and returns the objective). A point that fails returns its error in the
``error`` field instead of raising.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from regimescope.conservation.learning_rates import group_learning_rates
from regimescope.forecast import forecast_regime
from regimescope.monitor import RegimeMonitor
from regimescope.record import Record
from regimescope.report.build import slug
from regimescope.schedule import LogThenEvery
from regimescope.sinks import CallbackSink
from regimescope.sweep.builtins import WIDTH
from regimescope.sweep.grid import Axis, Value, point_name
from regimescope.sweep.task import SweepTask
from regimescope.tags import (
    KERNEL_DISTANCE,
    KERNEL_NORM_RATIO,
    KERNEL_RELATIVE_CHANGE,
    LABELS,
    REGIME_LABEL,
    REGIME_SCORE,
    RICH,
)

logger = logging.getLogger(__name__)

MEASUREMENTS = 16
"""Regular measurements per point when the monitor options set no schedule (plus the early log-spaced ones)."""
FORECAST_FIELDS = ("forecast", "forecast_ratio", "forecast_fast")
"""Metrics of the step-0 forecast: its label and its lazy ratios on all directions and on the fast ones."""
MEASURED_FIELDS = ("label", "score", "distance", "change", "growth", "time_to_rich", "loss_start", "loss_end")
"""Metrics of the measured run: final label and score, ``S(K_0, K_T)``, ``|K_T - K_0| / |K_0|``, ``|K_T| / |K_0|``,
first step labelled rich, and the training loss at the first and last step."""
_TAGS = {
    "score": REGIME_SCORE,
    "distance": KERNEL_DISTANCE,
    "change": KERNEL_RELATIVE_CHANGE,
    "growth": KERNEL_NORM_RATIO,
}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class MeasuredMetrics:
    """The measured fields of a run, kept up to date one record at a time.

    Fed every record the monitor writes (as a :class:`~regimescope.sinks.CallbackSink`'s function), it keeps the
    first step labelled rich however many measurements the monitor's bounded :attr:`~RegimeMonitor.history` drops.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._label: str | None = None
        self._time_to_rich: int | None = None

    def __call__(self, record: Record) -> None:
        """Take in one record."""
        self._last.update({name: record.scalars[t] for name, t in _TAGS.items() if t in record.scalars})
        if REGIME_LABEL in record.scalars:
            self._label = LABELS[int(record.scalars[REGIME_LABEL])]
            if self._label == RICH and self._time_to_rich is None:
                self._time_to_rich = record.step

    def metrics(self) -> dict[str, Any]:
        """Final score, ``S(K_0, K_T)``, change, growth and label, and the first step labelled rich (``None`` where
        the run has no such value)."""
        metrics: dict[str, Any] = {name: self._last.get(name) for name in _TAGS}
        metrics.update(label=self._label, time_to_rich=self._time_to_rich)
        return metrics


class SweepPoint:
    """The function ``knob values -> metrics`` of one sweep (picklable when its task is).

    Args:
        task: What to build and train.
        axes: The grid (for Optuna trials, which suggest values from it, and for the default base width).
        logdir: Folder under which each point writes its monitor logs (``<logdir>/<point name>``); ``None`` writes
            none.
        measure: Train and measure (``False``: the step-0 forecast only).
        objective: The metric an Optuna trial returns (``"score"`` by default).
    """

    def __init__(
        self,
        task: SweepTask,
        axes: Sequence[Axis] = (),
        *,
        logdir: str | Path | None = None,
        measure: bool = True,
        objective: str = "score",
    ) -> None:
        self.task = task
        self.axes = tuple(axes)
        self.logdir = None if logdir is None else Path(logdir)
        self.measure = measure
        self.objective = objective

    def __call__(self, values: Mapping[str, Value] | Any) -> dict[str, Any] | float:
        """Run the point. With a mapping, return its metrics; with an Optuna trial, return the objective.

        An Optuna trial (anything with ``suggest_categorical``) gets each knob suggested from the grid's values,
        every metric stored with ``trial.set_user_attr``, and the objective returned (NaN when the point failed,
        which Optuna records as a failed trial).
        """
        if hasattr(values, "suggest_categorical"):
            trial = values
            if not self.axes:
                raise ValueError("An Optuna trial needs the grid: build the point as SweepPoint(task, axes).")
            chosen = {axis.name: trial.suggest_categorical(axis.name, list(axis.values)) for axis in self.axes}
            metrics = self.run(chosen)
            for name, value in metrics.items():
                trial.set_user_attr(name, value)
            result = _number(metrics.get(self.objective))
            return math.nan if result is None else result
        return self.run(values)

    def folder(self, values: Mapping[str, Value]) -> Path | None:
        """The point's log folder (``None`` without a logdir)."""
        return None if self.logdir is None else self.logdir / slug(point_name(values))

    def run(self, values: Mapping[str, Value], on_step: Callable[[], None] | None = None) -> dict[str, Any]:
        """The point's metrics: its knob values, the forecast fields, the measured fields (when measuring), the
        wall time and ``error`` (``None``, or what went wrong: the point is reported, the sweep goes on).

        Args:
            values: The knob values.
            on_step: Called after each training step (a progress bar).
        """
        values = dict(values)
        metrics: dict[str, Any] = {**values, "point": point_name(values)}
        metrics.update(dict.fromkeys(FORECAST_FIELDS))
        if self.measure:
            metrics.update(dict.fromkeys(MEASURED_FIELDS))
        start = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.task.seed)
                metrics.update(self._measured(values, on_step) if self.measure else self._forecast(values))
            metrics["error"] = None
        except Exception as error:  # a point's failure is reported in its row, never fatal to the sweep
            logger.warning("regimescope sweep: point %s failed: %s: %s", metrics["point"], type(error).__name__, error)
            logger.debug("traceback of the failed point", exc_info=True)
            metrics["error"] = f"{type(error).__name__}: {error}"
        metrics["seconds"] = time.perf_counter() - start
        return metrics

    def _widths(self) -> tuple[int, ...]:
        return tuple(int(v) for axis in self.axes if axis.name == WIDTH for v in axis.values)

    def _monitor_settings(self) -> dict[str, Any]:
        options = self.task.monitor_options
        return {key: options[key] for key in ("output_fn", "mode", "dtype") if key in options}

    def _forecast(self, values: Mapping[str, Value]) -> dict[str, Any]:
        model, optimizer = self.task.build(values, self._widths())
        forecast = forecast_regime(
            model,
            self.task.probe,
            learning_rates=group_learning_rates(model, optimizer),
            **self._monitor_settings(),
        )
        return _forecast_fields(forecast)

    def _measured(self, values: Mapping[str, Value], on_step: Callable[[], None] | None) -> dict[str, Any]:
        model, optimizer = self.task.build(values, self._widths())
        options = dict(self.task.monitor_options)
        if "schedule" not in options and "every" not in options:
            options["schedule"] = LogThenEvery(max(1, self.task.steps // MEASUREMENTS))
        options.setdefault("strict", True)  # a failing measurement fails the point instead of pausing silently
        options.setdefault("alert_rules", ())  # the table and the diagrams report the regime, not alerts
        # A point is a short run whose measurements are the diagram itself: measure on the schedule and exactly (the
        # sweep is the cost its user asked for), unless the task's monitor options say otherwise.
        options.setdefault("max_overhead", None)
        account = MeasuredMetrics()
        options["sinks"] = [*options.get("sinks", ()), CallbackSink(account)]
        monitor = RegimeMonitor(model, self.task.probe, optimizer=optimizer, logdir=self.folder(values), **options)
        step_arguments = self.task.arguments("step", values)
        losses = []
        with monitor:
            batches = self.task.batches()
            for _ in range(self.task.steps):
                losses.append(_number(self.task.train_step(model, optimizer, next(batches), **step_arguments)))
                if on_step is not None:
                    on_step()
            forecast = monitor.forecast
        metrics = account.metrics()
        metrics.update(loss_start=losses[0] if losses else None, loss_end=losses[-1] if losses else None)
        if forecast is not None:
            metrics.update(_forecast_fields(forecast))
        return metrics


def _forecast_fields(forecast: Any) -> dict[str, Any]:
    return {
        "forecast": forecast.label,
        "forecast_ratio": None if forecast.full is None else forecast.full.change,
        "forecast_fast": None if forecast.fast is None else forecast.fast.change,
    }
