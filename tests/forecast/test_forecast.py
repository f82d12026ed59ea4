"""The step-0 forecast: its labels, its reasons, and the monitor's use of it."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

import regimescope as rs
import regimescope.verdict.judge as judge_module
from regimescope.forecast import LAZY_RATIO, Forecast, confirmed, forecast_regime
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
    with caplog.at_level(logging.INFO, logger="regimescope.verdict.judge"):
        monitor = rs.RegimeMonitor(setup.model, setup.probe, sinks=[sink]).attach()
    assert monitor.forecast.label == "rich"
    assert sink.texts("regimescope/regime/forecast") == ([0], [monitor.forecast.markdown()])
    assert any("forecast at step 0: rich" in r.getMessage() for r in caplog.records)
    assert "Forecast at step 0: rich" in monitor.explain()
    monitor.close()


def test_a_failing_forecast_never_stops_monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(judge_module, "forecast_regime", broken)
    setup = get("minimal/balanced").build()
    monitor = rs.RegimeMonitor(setup.model, setup.probe).attach()
    assert monitor.forecast is None and monitor.regime is not None and not monitor.paused
    monitor.close()
    with pytest.raises(RuntimeError, match="boom"):
        rs.RegimeMonitor(setup.model, setup.probe, strict=True).attach()


def _relu_mlp(widths: tuple[int, ...] = (4, 16, 16, 2), bias: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(fan_in, fan_out, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double()


def test_given_step0_kernels_and_pairs_give_the_same_forecast_as_computing_them() -> None:
    model = _relu_mlp()
    x, y = torch.randn(12, 4, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64)
    probe = rs.Probe(x, y)
    rates = {name: 0.1 if name.startswith("0.") else 0.02 for name, _ in model.named_parameters()}
    own = forecast_regime(model, probe, learning_rates=rates, dtype=torch.float64)
    kernels = rs.empirical_ntk(model, x, per_layer=True, dtype=torch.float64)
    options = {"dtype": torch.float64}
    reused = forecast_regime(model, probe, learning_rates=rates, kernels=kernels, kernel_options=options)
    assert reused.label == own.label
    for a, b in ((own.fast, reused.fast), (own.full, reused.full)):
        assert b.change == pytest.approx(a.change, rel=1e-10) and b.fitted == pytest.approx(a.fitted, rel=1e-10)

    found = rs.conservation.find_layer_pairs(model)
    given = forecast_regime(model, probe, learning_rates=rates, dtype=torch.float64, pairs=found)
    assert given.geometry == own.geometry and given.label == own.label
    assert forecast_regime(model, probe, dtype=torch.float64, pairs=[]).geometry.pairs == ()


def test_the_monitor_forecast_reuses_its_step0_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two kernels for the two displaced initialisations; the step-0 kernel is the monitor's own."""
    import regimescope.forecast.lazy_ratio as lazy_ratio_module

    calls = []
    original = lazy_ratio_module.empirical_ntk
    monkeypatch.setattr(lazy_ratio_module, "empirical_ntk", lambda *a, **k: calls.append(1) or original(*a, **k))
    setup = get("minimal/balanced").build()
    monitor = rs.RegimeMonitor(setup.model, setup.probe).attach()
    assert monitor.forecast.label == "rich" and len(calls) == 2
    monitor.close()


class _Untraceable(nn.Module):
    """A ReLU net whose data-dependent branch ``torch.fx`` cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _relu_mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) if bool(x.sum() > -1e9) else -self.net(x)


def test_a_model_fx_cannot_trace_is_traced_once_at_attach(monkeypatch: pytest.MonkeyPatch) -> None:
    """The balance indicator's failed trace is the forecast's answer too: it says why, without tracing again."""
    from regimescope.conservation import discovery

    traces = []
    original = discovery._trace
    monkeypatch.setattr(discovery, "_trace", lambda model: traces.append(1) or original(model))
    probe = rs.Probe(torch.randn(12, 4, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64))
    monitor = rs.RegimeMonitor(_Untraceable(), probe, dtype=torch.float64).attach()
    assert len(traces) == 1
    assert not monitor.forecast.geometry.traced and monitor.forecast.label is not None
    assert any("could not be traced" in reason for reason in monitor.forecast.reasons)
    monitor.close()


def test_kernel_subsets_are_refused() -> None:
    model = _relu_mlp()
    probe = rs.Probe(torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"kernel_options\['outputs'\].*trace kernel over every output"):
        forecast_regime(model, probe, kernel_options={"outputs": [0]})


def test_an_unused_trainable_parameter_takes_no_step(caplog: pytest.LogCaptureFixture) -> None:
    model = _relu_mlp()
    model.register_parameter("unused", nn.Parameter(torch.ones(3, dtype=torch.float64)))
    probe = rs.Probe(torch.randn(12, 4, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64))
    with caplog.at_level(logging.ERROR):
        monitor = rs.RegimeMonitor(model, probe, dtype=torch.float64).attach()
    assert not caplog.records and monitor.forecast.label is not None
    monitor.close()


def test_a_zero_initial_kernel_gives_no_label_and_no_infinity() -> None:
    model = _relu_mlp(bias=False)
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    probe = rs.Probe(torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64))
    forecast = forecast_regime(model, probe, dtype=torch.float64)
    assert forecast.label is None and forecast.fast is None and forecast.full is None
    assert forecast.reasons[0].startswith("No forecast: the initial kernel K_H has norm 0.0")


def test_zero_head_forecast_is_finite() -> None:
    model = _relu_mlp()
    nn.init.zeros_(model[-1].weight)
    nn.init.zeros_(model[-1].bias)
    probe = rs.Probe(torch.randn(12, 4, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64))
    forecast = forecast_regime(model, probe, dtype=torch.float64)
    assert forecast.label is not None
    assert all(math.isfinite(v) for r in (forecast.fast, forecast.full) for v in (r.change, r.distance, r.fitted))
    assert all(math.isfinite(pair.rho) for pair in forecast.geometry.pairs)


def test_repr_and_reasons_stay_a_few_lines_on_a_deep_model() -> None:
    torch.manual_seed(0)
    blocks: list[nn.Module] = [nn.Linear(4, 16)]
    for index in range(30):
        blocks += [nn.BatchNorm1d(16) if index % 3 == 0 else nn.ReLU(), nn.Linear(16, 16)]
    model = nn.Sequential(*blocks, nn.ReLU(), nn.Linear(16, 2))
    forecast = forecast_regime(model, rs.Probe(torch.randn(10, 4), torch.randn(10, 2)))
    assert len(forecast.geometry.pairs) > 20  # every pair, with its reason, stays on the object
    assert "\n" not in repr(forecast) and len(repr(forecast)) < 200
    text = forecast.markdown()
    assert len(text.splitlines()) <= 6 and len(text) < 1500, text
    assert "over 31 conserved pairs: mean" in text
    assert "Balance not conserved for 10 of 41 pairs: 10 normalisation" in text


def test_a_forecast_state_from_before_pair_causes_loads() -> None:
    forecast, _ = _forecast("minimal/downstream")
    state = forecast.to_state()
    for pair in state["geometry"]["pairs"]:
        del pair["causes"]
    assert Forecast.from_state(state).geometry.pairs[0].causes == ()
