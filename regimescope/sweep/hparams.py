"""TensorBoard HParams dashboard entries of a sweep: knob values -> final score, S, growth, time to rich, forecast.

Written with TensorBoard's own hparams summary API (``tensorboard.plugins.hparams.summary_v2``, which needs no
TensorFlow), imported when a sweep writes: the experiment (knobs and metrics) at the sweep's logdir, and in each
point's folder the point's knob values (a session) and its metrics as scalars at the last step, so TensorBoard's
HParams tab lists the points next to the monitor's own logs of each run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regimescope import tags
from regimescope.sinks.tensorboard import _summary_writer_class
from regimescope.sweep.grid import Axis

METRICS = {
    "score": (tags.SWEEP_SCORE, "richness score", "final richness score in [0, 1] (0 lazy, 1 rich)"),
    "distance": (tags.SWEEP_DISTANCE, "S(K0, KT)", "kernel distance from initialisation at the end"),
    "change": (tags.SWEEP_CHANGE, "|KT-K0|/|K0|", "relative kernel change at the end"),
    "growth": (tags.SWEEP_GROWTH, "|KT|/|K0|", "kernel growth at the end"),
    "time_to_rich": (tags.SWEEP_TIME_TO_RICH, "rich at step", "first step labelled rich (absent if never)"),
    "forecast_ratio": (tags.SWEEP_FORECAST_RATIO, "forecast q", "the step-0 forecast's lazy ratio"),
    "forecast_fast": (
        tags.SWEEP_FORECAST_FAST,
        "forecast q fast",
        "the step-0 forecast's lazy ratio on the fast directions (lazy there, not on all: delayed rich)",
    ),
    "failed": (tags.SWEEP_FAILED, "failed", "1 when the point raised (its error is in the table)"),
}
"""Row key -> (scalar tag, display name, description) of each HParams metric."""
FORECAST_METRICS = ("forecast_ratio", "forecast_fast", "failed")
"""The metrics of a forecast-only sweep."""


def _api() -> Any:
    try:
        from tensorboard.plugins.hparams import summary_v2
    except ImportError as error:
        raise ImportError(
            f"Writing the HParams dashboard needs the `tensorboard` package ({error}); install it with "
            "`pip install tensorboard`, or call rs.sweep(..., logdir=None)."
        ) from error
    return summary_v2


def _hparam_value(value: Any) -> float | str | bool:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _metric_values(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, float]:
    values = {"failed": float(row.get("error") is not None)}
    for key in keys:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values[key] = float(value)
    return values


def write_hparams(
    logdir: str | Path,
    axes: Sequence[Axis],
    rows: Sequence[Mapping[str, Any]],
    folders: Sequence[Path],
    step: int,
    keys: Sequence[str] = tuple(METRICS),
) -> None:
    """Write the experiment to ``logdir`` and each row's session and metrics to its folder.

    Args:
        logdir: The sweep's log folder.
        axes: The knobs.
        rows: The table, one row per folder.
        folders: Each row's run folder (under ``logdir``).
        step: The step the metrics are logged at (the training budget; 0 for the forecast).
        keys: The metrics (keys of :data:`METRICS`): all of them, or :data:`FORECAST_METRICS` for a forecast-only
            sweep.
    """
    hp = _api()
    writer_class = _summary_writer_class()
    hparams = [hp.HParam(axis.name, hp.Discrete([_hparam_value(v) for v in axis.values])) for axis in axes]
    metrics = [hp.Metric(t, display_name=name, description=text) for t, name, text in map(METRICS.get, keys)]
    with writer_class(log_dir=str(logdir)) as writer:
        writer.file_writer.add_summary(hp.hparams_config_pb(hparams, metrics))
    for row, folder in zip(rows, folders):
        values = {axis.name: _hparam_value(row[axis.name]) for axis in axes}
        with writer_class(log_dir=str(folder)) as writer:
            writer.file_writer.add_summary(hp.hparams_pb(values, trial_id=str(row.get("point", folder.name))))
            for key, value in _metric_values(row, keys).items():
                writer.add_scalar(METRICS[key][0], value, global_step=step)
