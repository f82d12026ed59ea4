"""Thresholds from scenarios: the max-margin ramp, and the library's constants recomputed from the runs."""

from __future__ import annotations

import math

import pytest

from regimescope.scenarios import Signature, calibrate_ramp, calibrate_score, geometric_midpoint
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE
from regimescope.verdict.score import RAMPS
from tests.scenarios._outcomes import outcomes


def test_ramp_puts_the_label_boundaries_at_the_thirds_of_the_log_gap() -> None:
    calibration = calibrate_ramp(1e-4, 1e-1)
    ramp = calibration.ramp
    assert ramp.boundary(LAZY_BELOW) == pytest.approx(1e-3)
    assert ramp.boundary(RICH_ABOVE) == pytest.approx(1e-2)
    assert ramp(1e-4) == pytest.approx(0.05) and ramp(1e-1) == pytest.approx(0.95)
    assert (calibration.lazy_anchor, calibration.rich_anchor) == (1e-4, 1e-1)


@pytest.mark.parametrize(("lazy", "rich"), [(0.1, 0.1), (0.2, 0.1), (0.0, 1.0)])
def test_anchors_that_do_not_separate_are_refused(lazy: float, rich: float) -> None:
    with pytest.raises(ValueError, match=r"expected 0 < lazy < rich"):
        calibrate_ramp(lazy, rich)
    with pytest.raises(ValueError, match=r"expected 0 < lazy < rich"):
        geometric_midpoint(lazy, rich)


def test_geometric_midpoint() -> None:
    assert geometric_midpoint(0.01, 1.0) == pytest.approx(0.1)


@pytest.mark.slow
def test_library_ramps_are_the_ones_the_scenarios_give() -> None:
    """Recalibrating on the scenarios reproduces score.py's ends (rounded to two digits there)."""
    calibrated = calibrate_score(outcomes().values())
    for signature in (Signature.DIRECTION, Signature.SCALE):
        found, used = calibrated[signature].ramp, RAMPS[signature.value]
        assert math.log(used.low) == pytest.approx(math.log(found.low), abs=0.1), signature
        assert math.log(used.high) == pytest.approx(math.log(found.high), abs=0.1), signature
    assert calibrated[Signature.DIRECTION].lazy_run == "minimal/upstream"
    assert calibrated[Signature.SCALE].rich_run == "minimal/balanced-aligned"
