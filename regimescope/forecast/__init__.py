"""Forecasts of the regime: from the initialisation geometry at step 0, and exact trajectories of solvable models.

- :func:`forecast_regime`: lazy / rich / delayed-rich before training starts, with its reasoning (the monitor
  logs it at ``attach()`` as ``regimescope/regime/forecast``).
- :class:`MinimalModelSolution`, :class:`LambdaBalancedSolution`: the exact gradient-flow solutions of theory.md
  section 4 (Kunin et al. 2024; Dominé et al. 2025), whose NTK, kernel distance and function the monitor's
  measurements are checked against.
"""

from regimescope.forecast.forecast import FAST_RIDGE, LAZY_RATIO, SLOW_RIDGE, Forecast, confirmed, forecast_regime
from regimescope.forecast.geometry import InitGeometry, PairGeometry, init_geometry
from regimescope.forecast.lambda_balanced import LambdaBalancedSolution, LambdaBalancedState, lambda_balanced_init
from regimescope.forecast.lazy_ratio import LazyRatio, lazy_ratios
from regimescope.forecast.minimal_model import MinimalModelSolution, MinimalModelState
from regimescope.forecast.residual import target_residual

__all__ = [
    "FAST_RIDGE",
    "LAZY_RATIO",
    "SLOW_RIDGE",
    "Forecast",
    "InitGeometry",
    "LambdaBalancedSolution",
    "LambdaBalancedState",
    "LazyRatio",
    "MinimalModelSolution",
    "MinimalModelState",
    "PairGeometry",
    "confirmed",
    "forecast_regime",
    "init_geometry",
    "lambda_balanced_init",
    "lazy_ratios",
    "target_residual",
]
