"""Scenario 6.1 over a run: what breaks conservation and how fast (theory.md section 2)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regimescope.conservation import (
    balance_drift,
    conserved_quantities,
    find_layer_pairs,
    unit_deltas,
    unit_scales,
    unit_squares,
)
from tests.conservation._nets import inputs_for, targets_for, train, two_layer

TIME = {"sgd": 2.0, "adam": 0.5}
"""Training time t = steps * eta held fixed while eta shrinks."""


def _drift_after(
    optimizer_cls: type[torch.optim.Optimizer], eta: float, time: float, seed: int, activation: nn.Module | None = None
) -> float:
    """Balance drift of a two-layer net after minibatch training for time ``time = steps * eta``."""
    model = two_layer(activation, seed=seed, hidden=8)
    x = inputs_for(model, n=64)
    y = targets_for(model, x)
    pair = find_layer_pairs(model)[0]
    start = unit_squares(pair, {n: p.detach().clone() for n, p in model.named_parameters()})
    train(model, x, y, optimizer_cls(model.parameters(), lr=eta), round(time / eta), batch_size=8)
    now = unit_squares(pair, dict(model.named_parameters()))
    return balance_drift(unit_deltas(now), unit_deltas(start), unit_scales(start))


@pytest.mark.parametrize("seed", [0, 1])
def test_sgd_drift_at_fixed_time_shrinks_linearly_with_eta(seed: int) -> None:
    drifts = [_drift_after(torch.optim.SGD, eta, TIME["sgd"], seed) for eta in (0.04, 0.02, 0.01)]
    assert drifts[0] > 0
    for larger, smaller in zip(drifts, drifts[1:]):
        assert 1.6 < larger / smaller < 2.8


@pytest.mark.parametrize("seed", [0, 1])
def test_adam_drift_at_fixed_time_does_not_shrink_with_eta(seed: int) -> None:
    adam = [_drift_after(torch.optim.Adam, eta, TIME["adam"], seed) for eta in (0.004, 0.001)]
    sgd_small_eta = _drift_after(torch.optim.SGD, 0.001, TIME["adam"], seed)
    assert adam[1] > 0.7 * adam[0]
    assert adam[1] > 20 * sgd_small_eta


def test_coupled_weight_decay_decays_delta_exponentially() -> None:
    model = two_layer(hidden=8)
    with torch.no_grad():  # upstream: delta_k > 0 for every unit
        model[0].weight.mul_(0.3)
        model[0].bias.mul_(0.3)
        model[2].weight.mul_(3.0)
    x = inputs_for(model, n=64)
    y = targets_for(model, x)
    delta_0 = conserved_quantities(model)["0-2"].delta
    assert bool((delta_0 > 0).all())
    eta, weight_decay, steps = 1e-3, 0.5, 1000
    train(model, x, y, torch.optim.SGD(model.parameters(), lr=eta, weight_decay=weight_decay), steps)
    delta_t = conserved_quantities(model)["0-2"].delta
    predicted = delta_0 * math.exp(-2 * eta * weight_decay * steps)
    assert float((delta_t - delta_0).norm() / delta_0.norm()) > 0.5
    assert float((delta_t - predicted).norm() / delta_0.norm()) < 1e-3


def test_tanh_drift_at_fixed_time_does_not_shrink_with_eta() -> None:
    drifts = [_drift_after(torch.optim.SGD, eta, TIME["sgd"], 0, nn.Tanh()) for eta in (0.04, 0.01)]
    assert drifts[1] > 0.7 * drifts[0]
    assert drifts[1] > 10 * _drift_after(torch.optim.SGD, 0.01, TIME["sgd"], 0)
