"""The monitor's balance panels: near-zero drift under small-step gradient descent, large drift under Adam."""

from __future__ import annotations

import torch
from torch import nn

import regimescope as rs


def _drift(optimizer_name: str) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 24), nn.ReLU(), nn.Linear(24, 1)).double()
    x = torch.randn(64, 5, dtype=torch.float64)
    y = torch.sin(x[:, :1]) + x[:, 1:2]
    if optimizer_name == "gd":
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sink = rs.MemorySink()
    with rs.RegimeMonitor(model, rs.Probe(x[:16], y[:16]), optimizer=optimizer, sinks=[sink], every=50, max_overhead=None):
        for _ in range(200):
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    steps, drifts = sink.scalars("regimescope/balance_drift/0-2")
    assert steps == [0, 1, 2, 4, 8, 16, 32, 50, 100, 150, 200]
    assert drifts[0] == 0.0
    return drifts[-1]


def test_balance_drift_is_tiny_under_gradient_descent_and_large_under_adam() -> None:
    gd, adam = _drift("gd"), _drift("adam")
    assert gd < 1e-3
    assert adam > 1e-2
    assert adam > 100 * gd


def test_attach_traces_the_layer_pairs_once_for_the_balance_and_the_forecast(monkeypatch) -> None:
    from regimescope.conservation import discovery
    from regimescope.forecast import geometry

    traced = []
    find = discovery.find_layer_pairs
    for module in (discovery, geometry):  # where the context and the forecast look the discovery up
        monkeypatch.setattr(module, "find_layer_pairs", lambda model: traced.append(model) or find(model))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 24), nn.ReLU(), nn.Linear(24, 1))
    x = torch.randn(16, 5)
    monitor = rs.RegimeMonitor(model, rs.Probe(x, x[:, :1]), max_overhead=None).attach()
    assert len(traced) == 1
    assert [pair.name for pair in monitor.forecast.geometry.pairs] == ["0-2"]
    assert any(indicator.name == "balance" for indicator in monitor.indicators)
    monitor.close()
