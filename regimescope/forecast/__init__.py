"""The step-0 forecast of the regime from the initialisation geometry.

:func:`forecast_regime`: lazy / rich / delayed-rich before training starts, with its reasoning (the monitor logs it
at ``attach()`` as ``regimescope/regime/forecast``). The exact solutions of solvable models, which tests check the
monitor against, live in :mod:`regimescope.exact`.
"""

from regimescope.forecast.forecast import FAST_RIDGE, LAZY_RATIO, SLOW_RIDGE, Forecast, confirmed, forecast_regime
from regimescope.forecast.geometry import InitGeometry, PairGeometry, init_geometry
from regimescope.forecast.lazy_ratio import LazyRatio, UndefinedRatio, lazy_ratios
from regimescope.forecast.residual import target_residual

__all__ = [
    "FAST_RIDGE",
    "LAZY_RATIO",
    "SLOW_RIDGE",
    "Forecast",
    "InitGeometry",
    "LazyRatio",
    "PairGeometry",
    "UndefinedRatio",
    "confirmed",
    "forecast_regime",
    "init_geometry",
    "lazy_ratios",
    "target_residual",
]
