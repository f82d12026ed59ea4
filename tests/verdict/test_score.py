"""The richness score: two log-space ramps, the larger wins."""

from __future__ import annotations

import math

import pytest

from regimescope.tags import KERNEL_DISTANCE as DISTANCE_TAG
from regimescope.tags import KERNEL_RELATIVE_CHANGE as CHANGE_TAG
from regimescope.verdict import RAMPS, Ramp, richness_evidence, richness_score
from regimescope.verdict.score import R_LAZY, R_RICH, S_LAZY, S_RICH


def test_ramp_is_zero_below_one_above_and_linear_in_log_between() -> None:
    ramp = Ramp(1e-3, 1e-1)
    assert ramp(1e-4) == 0.0 and ramp(1e-3) == 0.0 and ramp(0.1) == 1.0 and ramp(5.0) == 1.0
    assert ramp(1e-2) == pytest.approx(0.5)
    assert ramp(float("nan")) == 0.0
    for score in (0.05, 0.35, 0.65, 0.95):
        assert ramp(ramp.boundary(score)) == pytest.approx(score)


def test_the_ramps_are_the_calibrated_constants() -> None:
    assert RAMPS["direction"] == Ramp(S_LAZY, S_RICH)
    assert RAMPS["scale"] == Ramp(R_LAZY, R_RICH)
    assert S_LAZY < S_RICH and R_LAZY < R_RICH


def test_score_is_the_larger_evidence() -> None:
    turned = {DISTANCE_TAG: S_RICH, CHANGE_TAG: R_LAZY}
    grown = {DISTANCE_TAG: 0.0, CHANGE_TAG: R_RICH}
    assert richness_evidence(turned) == {"direction": 1.0, "scale": 0.0}
    assert richness_score(turned) == 1.0 and richness_score(grown) == 1.0
    middle = {DISTANCE_TAG: math.sqrt(S_LAZY * S_RICH), CHANGE_TAG: R_LAZY}
    assert richness_score(middle) == pytest.approx(0.5)


def test_no_kernel_evidence_no_score() -> None:
    assert richness_score({"regimescope/weights/relative_change/0": 3.0}) is None
    assert richness_score({CHANGE_TAG: math.inf}) == 1.0
