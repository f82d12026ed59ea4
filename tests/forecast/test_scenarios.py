"""The forecast on every calibration scenario: theory's answer before training, confirmed by the run's verdicts."""

from __future__ import annotations

import pytest

from regimescope.forecast import LAZY_RATIO
from regimescope.scenarios import SCENARIOS, Theory, calibrate_forecast
from tests.scenarios._outcomes import outcomes

THEORY_FORECASTS = {
    Theory.LAZY: {"lazy"},
    Theory.RICH: {"rich"},
    Theory.DELAYED_RICH: {"delayed-rich"},
    Theory.LAZY_EARLY: {"lazy", "delayed-rich"},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_forecast_agrees_with_theory_and_with_training(name: str) -> None:
    outcome = outcomes()[name]
    assert outcome.forecast_label in THEORY_FORECASTS[outcome.scenario.theory]
    assert outcome.forecast_confirmed, (outcome.forecast_label, outcome.early_label, outcome.label)


@pytest.mark.slow
def test_the_lazy_ratio_boundary_is_the_calibrated_one() -> None:
    calibration = calibrate_forecast(outcomes().values())
    assert calibration.lazy_anchor < LAZY_RATIO < calibration.rich_anchor
    assert LAZY_RATIO == pytest.approx(calibration.boundary, rel=0.1)
