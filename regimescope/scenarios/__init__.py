"""The scenarios theory knows the answer for: one catalogue, one expectation type, one runner.

Each :class:`Scenario` is a small model whose regime theory.md sections 4-6 predict (:class:`Theory`), built
deterministically; :func:`run_scenario` trains it by gradient descent with a monitor attached and returns what the
monitor said (:class:`Outcome`). ``regimescope demo`` runs the teacher-student scenarios (:data:`DEMO`),
``benchmarks/verdicts.py`` runs them all and recomputes the verdict's thresholds (:mod:`.calibration`), and the tests
check the verdict and the forecast on every scenario.

This package sits above the monitor and the sinks (it drives them) and below the command line: nothing else in
``regimescope`` imports it.
"""

from regimescope.scenarios.calibration import (
    Calibration,
    ForecastCalibration,
    calibrate_forecast,
    calibrate_ramp,
    calibrate_score,
    geometric_midpoint,
)
from regimescope.scenarios.catalogue import DEMO, SCENARIOS, get
from regimescope.scenarios.initialisation import InitSpec, Parametrisation, make_student, unit_magnitudes
from regimescope.scenarios.runner import EARLY_FRACTION, MEASUREMENTS, Outcome, loss, run_scenario, train
from regimescope.scenarios.scenario import Scenario, Setup
from regimescope.scenarios.student import TwoLayerReLU
from regimescope.scenarios.teacher_student import (
    DEFAULT_DIM,
    PROBE_SIZE,
    Teacher,
    make_probe,
    make_teacher,
    make_teacher_student,
)
from regimescope.scenarios.theory import Signature, Theory

__all__ = [
    "DEFAULT_DIM",
    "DEMO",
    "EARLY_FRACTION",
    "MEASUREMENTS",
    "PROBE_SIZE",
    "SCENARIOS",
    "Calibration",
    "ForecastCalibration",
    "InitSpec",
    "Outcome",
    "Parametrisation",
    "Scenario",
    "Setup",
    "Signature",
    "Teacher",
    "Theory",
    "TwoLayerReLU",
    "calibrate_forecast",
    "calibrate_ramp",
    "calibrate_score",
    "geometric_midpoint",
    "get",
    "loss",
    "make_probe",
    "make_student",
    "make_teacher",
    "make_teacher_student",
    "run_scenario",
    "train",
    "unit_magnitudes",
]
