"""Alerts inside a training run: the monitor's wiring, delivery, noise estimates and opt-in stop requests."""

from __future__ import annotations

import copy
import logging
import warnings

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.alerts import AlertRule, Finding, KernelJump, Observation, RegimeShift, RegimeWarning

NOISE_TAG = "regimescope/noise/kernel/distance_from_init"


def _problem(seed: int = 0, width: int = 32, scale: float = 1.0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    x = torch.randn(64, 4, dtype=torch.float64)
    y = torch.sin(2 * x[:, :1]) - x[:, 1:2]
    return model, x, y


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _monitor(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, **kwargs
) -> rs.RegimeMonitor:
    return rs.RegimeMonitor(model, rs.Probe(x[:32], y[:32]), optimizer=optimizer, dtype=torch.float64, max_overhead=None,
                             **kwargs)


def test_adam_breaks_conservation_and_sgd_does_not() -> None:
    kinds = {}
    for name, make in (
        ("sgd", lambda p: torch.optim.SGD(p, lr=0.05)),
        ("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
    ):
        model, x, y = _problem()
        optimizer = make(model.parameters())
        received: list[rs.Alert] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RegimeWarning)
            monitor = _monitor(model, optimizer, x, y, every=20, on_alert=received.append).attach()
            _train(model, optimizer, x, y, 200)
        kinds[name] = [a for a in received if a.kind == "conservation_broken"]
        drift = monitor.history[-1].scalars["regimescope/balance_drift/0-2"]
        explained = monitor.history[-1].scalars["regimescope/balance_explained/0-2"]
        assert (drift <= explained) == (name == "sgd"), (name, drift, explained)
        monitor.close()
    assert kinds["sgd"] == []
    assert len(kinds["adam"]) == 1
    alert = kinds["adam"][0]
    assert alert.layer == "0-2" and alert.tag == "regimescope/balance_drift/0-2"
    assert alert.value > 2 * alert.reference
    assert f"at step {alert.step} in 0-2" in alert.message


def test_divergence_is_a_non_finite_alert_and_requests_a_stop() -> None:
    model, x, y = _problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegimeWarning)
        monitor = _monitor(model, optimizer, x, y, every=1, stop_on=("non_finite",)).attach()
        steps = 0
        while not monitor.stop_requested and steps < 40:
            _train(model, optimizer, x, y, 1)
            steps += 1
    assert monitor.stop_requested, "training never diverged: raise the step size of this test"
    assert monitor.stop_reason.kind == "non_finite"
    assert monitor.stop_reason.step == steps
    assert not monitor.paused
    monitor.close()


def test_a_raising_callable_does_not_stop_training(caplog: pytest.LogCaptureFixture) -> None:
    model, x, y = _problem(scale=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    calls = {"bad": 0, "good": 0}

    def bad(alert: rs.Alert) -> None:
        calls["bad"] += 1
        raise RuntimeError("user callback bug")

    def good(alert: rs.Alert) -> None:
        calls["good"] += 1

    class EveryMeasurement(AlertRule):
        kind = "tick"
        meaning = "a user rule that fires at every measurement."

        def findings(self, observation: Observation) -> list[Finding]:
            return [Finding(key=str(observation.step), message="tick")]

    with caplog.at_level(logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore", RegimeWarning)
        monitor = _monitor(
            model, optimizer, x, y, every=5, on_alert=[bad, good], alert_rules=[EveryMeasurement()]
        ).attach()
        before = [p.detach().clone() for p in model.parameters()]
        _train(model, optimizer, x, y, 30)
    assert calls["bad"] == 1 and calls["good"] == len(monitor.history) == 10
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert [r for r in caplog.records if "on_alert callable raised" in r.getMessage()].__len__() == 1
    assert not monitor.paused and monitor.history[-1].step == 30
    monitor.close()


def test_alerts_reach_logging_warnings_and_tensorboard_text(caplog: pytest.LogCaptureFixture) -> None:
    model, x, y = _problem(scale=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    sink = rs.MemorySink()
    with caplog.at_level(logging.INFO, logger="regimescope.alerts"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegimeWarning)
        monitor = _monitor(
            model, optimizer, x, y, every=10, sinks=[sink], alert_rules=[RegimeShift(), KernelJump()]
        ).attach()
        _train(model, optimizer, x, y, 100)
    shifts = [r for r in caplog.records if "[regime_shift]" in r.getMessage()]
    assert shifts, "small initialisation should leave the lazy regime"
    regime_warnings = [w for w in caught if issubclass(w.category, RegimeWarning)]
    assert len(regime_warnings) == len([r for r in caplog.records if r.name == "regimescope.alerts"])
    # Printed once: the warning is what a user sees; the log record stays below WARNING (for log files).
    assert all(r.levelno < logging.WARNING for r in caplog.records if r.name == "regimescope.alerts" and "[" in r.msg)
    steps, texts = sink.texts("regimescope/alerts")
    assert sum(text.count("`regime_shift`") for text in texts) == len(shifts)
    assert all(text.startswith(f"**step {step}**") for step, text in zip(steps, texts))
    monitor.close()


def test_a_warnings_error_filter_turns_alerts_into_a_stop_request_not_a_failure() -> None:
    model, x, y = _problem(scale=0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegimeWarning)
        monitor = _monitor(model, optimizer, x, y, every=10, alert_rules=[RegimeShift()]).attach()
        _train(model, optimizer, x, y, 100)
    assert monitor.stop_requested and monitor.stop_reason.kind == "regime_shift"
    assert not monitor.paused and monitor.history[-1].step == 100
    monitor.close()


def test_lazy_run_with_only_measurement_noise_raises_no_alert() -> None:
    model, x, y = _problem(width=512)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    received: list[rs.Alert] = []
    monitor = _monitor(model, optimizer, x, y, every=10, on_alert=received.append).attach()
    _train(model, optimizer, x, y, 200)
    assert received == []
    noise = [r.scalars[NOISE_TAG] for r in monitor.history[1:]]
    assert all(n > 0 for n in noise)
    monitor.close()


def test_noise_estimates_and_explained_drift_are_logged_and_resumed() -> None:
    model, x, y = _problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = _monitor(model, optimizer, x, y, every=5).attach()
    _train(model, optimizer, x, y, 10)
    last = monitor.history[-1].scalars
    for name in (
        NOISE_TAG,
        "regimescope/noise/kernel/velocity",
        "regimescope/noise/balance_drift/0-2",
        "regimescope/noise/kernel/distance_from_init/0",
        "regimescope/balance_explained/0-2",
    ):
        assert name in last, name
    state = monitor.state_dict()
    checkpoint = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    monitor.close()
    _train(model, optimizer, x, y, 5)  # progress after the checkpoint, lost in a crash
    model.load_state_dict(checkpoint[0])
    optimizer.load_state_dict(checkpoint[1])
    resumed = _monitor(model, optimizer, x, y, every=5)
    resumed.load_state_dict(state)
    resumed.attach()
    _train(model, optimizer, x, y, 10)
    explained = [r.scalars["regimescope/balance_explained/0-2"] for r in resumed.history]
    assert [r.step for r in resumed.history] == [15, 20]
    assert explained[1] > explained[0] > last["regimescope/balance_explained/0-2"] > 0
    resumed.close()


def test_bad_alert_arguments_fail_early() -> None:
    model, x, y = _problem()
    with pytest.raises(TypeError, match="AlertRule instances"):
        _monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, alert_rules=[lambda o: []])
    with pytest.raises(TypeError, match="Wrap it"):
        _monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, stop_on="non_finite")
