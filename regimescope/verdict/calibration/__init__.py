"""The scenarios theory knows the answer for, and how the verdict's thresholds are set from them.

``benchmarks/verdicts.py`` trains every scenario with a monitor attached, prints theory's answer next to the
monitor's forecast and verdict, and recomputes the thresholds; ``tests/verdict`` and ``tests/forecast`` check that the
verdict and the forecast are right on every scenario and that the thresholds in
:mod:`regimescope.verdict.score` and :mod:`regimescope.forecast` are the calibrated ones.
"""

from regimescope.verdict.calibration.scenario import (
    EARLY_FRACTION,
    Outcome,
    Scenario,
    Setup,
    Signature,
    Theory,
    run_scenario,
)
from regimescope.verdict.calibration.suite import SCENARIOS, get
from regimescope.verdict.calibration.thresholds import (
    Calibration,
    ForecastCalibration,
    calibrate_forecast,
    calibrate_ramp,
    calibrate_score,
    geometric_midpoint,
)

__all__ = [
    "EARLY_FRACTION",
    "SCENARIOS",
    "Calibration",
    "ForecastCalibration",
    "Outcome",
    "Scenario",
    "Setup",
    "Signature",
    "Theory",
    "calibrate_forecast",
    "calibrate_ramp",
    "calibrate_score",
    "geometric_midpoint",
    "get",
    "run_scenario",
]
