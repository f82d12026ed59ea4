"""The step-0 forecast: its labels, its reasons, and the monitor's use of it."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import regimescope as rs
import regimescope.monitor as monitor_module
from regimescope.forecast import LAZY_RATIO, confirmed, forecast_regime
from regimescope.scenarios import get


def _forecast(name: str):
    setup = get(name).build()
    return forecast_regime(setup.model, setup.probe), setup


@pytest.mark.parametrize(
    ("scenario", "label"),
    [("minimal/upstream", "lazy"), ("minimal/balanced", "rich"), ("minimal/downstream", "delayed-rich")],
)
def test_labels_follow_the_two_lazy_ratios(scenario: str, label: str) -> None:
    forecast, _ = _forecast(scenario)
    assert forecast.label == label
    assert (forecast.full.change < LAZY_RATIO) == (label == "lazy")
    assert (forecast.fast.change < LAZY_RATIO) == (label != "rich")


def test_reasons_give_the_ratio_the_balance_and_the_output_scale() -> None:
    forecast, _ = _forecast("minimal/downstream")
    text = forecast.markdown()
    assert text.startswith("**forecast at step 0: delayed-rich**\n- The directions the initial kernel learns first")
    assert "0-1 -1.00 (downstream, 1 units)" in text
    assert "Activations positively homogeneous" in text
    assert "Output scale |f_0| / |y| = " in text


def test_non_homogeneous_activation_is_named() -> None:
    setup = get("width/tanh-4096").build()
    forecast = forecast_regime(setup.model, setup.probe)
    assert forecast.label == "lazy"
    assert any("Balance not conserved for hidden-readout (Tanh ('activation')" in reason for reason in forecast.reasons)


def test_no_targets_no_label() -> None:
    _, setup = _forecast("minimal/upstream")
    forecast = forecast_regime(setup.model, rs.Probe(setup.probe.inputs))
    assert forecast.label is None and forecast.fast is None
    assert "pass rs.Probe(inputs, targets)" in forecast.reasons[0]


def test_class_labels_are_forecast_from_the_cross_entropy_residual() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    x, labels = torch.randn(24, 4), torch.randint(0, 3, (24,))
    forecast = forecast_regime(model, rs.Probe(x, labels))
    assert forecast.label in ("lazy", "rich", "delayed-rich")
    assert forecast.geometry.output_scale is None


def test_a_fitted_initialisation_has_nothing_to_learn() -> None:
    model = nn.Linear(3, 1, bias=False).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    with torch.no_grad():
        forecast = forecast_regime(model, rs.Probe(x, model(x)))
    assert forecast.label == "lazy" and "nothing to learn" in forecast.reasons[0]


def test_forecasting_leaves_the_model_and_random_state_untouched() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    probe = rs.Probe(torch.randn(16, 4), torch.randn(16, 1))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    forecast_regime(model, probe, mode="train")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_confirmation_reads_the_verdicts_early_and_at_the_end() -> None:
    assert confirmed("lazy", "lazy", "lazy") and not confirmed("lazy", "lazy", "transitional")
    assert confirmed("rich", "lazy", "rich") and not confirmed("rich", "rich", "transitional")
    assert confirmed("delayed-rich", "lazy", "transitional") and not confirmed("delayed-rich", "rich", "rich")
    assert not confirmed(None, "lazy", "lazy")


def test_monitor_forecasts_at_attach_and_writes_it_with_the_first_verdict(caplog: pytest.LogCaptureFixture) -> None:
    setup = get("minimal/balanced").build()
    sink = rs.MemorySink()
    with caplog.at_level(logging.INFO, logger="regimescope.monitor"):
        monitor = rs.RegimeMonitor(setup.model, setup.probe, sinks=[sink]).attach()
    assert monitor.forecast.label == "rich"
    assert sink.texts("regimescope/regime/forecast") == ([0], [monitor.forecast.markdown()])
    assert any("forecast at step 0: rich" in r.getMessage() for r in caplog.records)
    assert "Forecast at step 0: rich" in monitor.explain()
    monitor.close()


def test_a_failing_forecast_never_stops_monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(monitor_module, "forecast_regime", broken)
    setup = get("minimal/balanced").build()
    monitor = rs.RegimeMonitor(setup.model, setup.probe).attach()
    assert monitor.forecast is None and monitor.regime is not None and not monitor.paused
    monitor.close()
    with pytest.raises(RuntimeError, match="boom"):
        rs.RegimeMonitor(setup.model, setup.probe, strict=True).attach()
