"""Synthetic runs behind ``regimescope demo``: a teacher-student task and initialisations of known regime."""

from regimescope.demo.initialisation import InitSpec, Parametrisation, make_student, unit_magnitudes
from regimescope.demo.scenarios import (
    DEFAULT_MEASUREMENTS,
    SCENARIOS,
    Budget,
    Expectation,
    ScenarioSpec,
    get_scenario,
)
from regimescope.demo.student import TwoLayerReLU
from regimescope.demo.teacher_student import (
    DEFAULT_DIM,
    PROBE_SIZE,
    Teacher,
    make_probe,
    make_teacher,
    make_teacher_student,
)
from regimescope.demo.training import TrainHistory, make_model, make_optimizer, train

__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_MEASUREMENTS",
    "PROBE_SIZE",
    "SCENARIOS",
    "Budget",
    "Expectation",
    "InitSpec",
    "Parametrisation",
    "ScenarioSpec",
    "Teacher",
    "TrainHistory",
    "TwoLayerReLU",
    "get_scenario",
    "make_model",
    "make_optimizer",
    "make_probe",
    "make_student",
    "make_teacher",
    "make_teacher_student",
    "train",
    "unit_magnitudes",
]
