"""Phase diagrams of the lazy/rich regime over up to three knobs: forecast from initialisation, then measured.

``rs.sweep(make_model, grid={...}, make_optimizer=..., data=...)`` (and ``regimescope sweep``) builds the model at
every point of the grid, forecasts its regime from the initialisation, trains it briefly with a monitor attached,
and draws both diagrams (PNG and HTML page), writes TensorBoard HParams entries and returns the table.

The package is callable: ``regimescope.sweep(...)`` is :func:`sweep` whichever way it was imported.
"""

import sys
import types
from typing import Any

from regimescope.sweep.boundary import (
    FORECAST_BOUNDARY,
    MEASURED_BOUNDARY,
    crossings,
    forecast_boundary,
    measured_boundary,
)
from regimescope.sweep.builtins import BUILTIN_KNOBS, BuiltinKnob
from regimescope.sweep.engines import Engine
from regimescope.sweep.grid import Axis, parse_grid, parse_values, point_name, points
from regimescope.sweep.point import SweepPoint
from regimescope.sweep.run import SweepResult, sweep
from regimescope.sweep.task import SweepTask, default_step

__all__ = [
    "BUILTIN_KNOBS",
    "FORECAST_BOUNDARY",
    "MEASURED_BOUNDARY",
    "Axis",
    "BuiltinKnob",
    "Engine",
    "SweepPoint",
    "SweepResult",
    "SweepTask",
    "crossings",
    "default_step",
    "forecast_boundary",
    "measured_boundary",
    "parse_grid",
    "parse_values",
    "point_name",
    "points",
    "sweep",
]


class _CallableModule(types.ModuleType):
    """``import regimescope.sweep`` makes the package an attribute of ``regimescope``, shadowing the lazily resolved
    function ``rs.sweep``; calling the package calls the function, so both spellings work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
