"""The explained drift bounds the balance drift of plain gradient descent, and not that of Adam or weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope.conservation.discovery import find_layer_pairs
from regimescope.conservation.explained_drift import ExplainedDrift
from regimescope.conservation.quantities import balance_drift, unit_deltas, unit_scales, unit_squares


def _drift_and_bound(make_optimizer, steps: int = 150, stride: int = 1) -> tuple[float, float]:
    """The balance drift after ``steps`` steps, and the explained drift observed every ``stride``-th step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2)).double()
    x = torch.randn(40, 3, dtype=torch.float64)
    y = torch.randn(40, 2, dtype=torch.float64)
    (pair,) = [p for p in find_layer_pairs(model) if p.conserved]
    explained = ExplainedDrift([(pair, None)])
    explained.start(model)
    init = unit_squares(pair, dict(model.named_parameters()))
    optimizer = make_optimizer(model.parameters())
    taken = []

    def observe(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        taken.append(None)
        if (len(taken) - 1) % stride == 0:  # steps 1, 1 + stride, ...: each stands for itself and the next
            explained.observe(opt, stride)

    optimizer.register_step_post_hook(observe)
    for _ in range(steps):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    now = unit_squares(pair, dict(model.named_parameters()))
    drift = balance_drift(unit_deltas(now), unit_deltas(init), unit_scales(init))
    return drift, explained.scalars()[f"regimescope/balance_explained/{pair.name}"]


@pytest.mark.parametrize("lr", [0.01, 0.1])
def test_plain_gradient_descent_drift_is_within_the_bound(lr: float) -> None:
    drift, bound = _drift_and_bound(lambda p: torch.optim.SGD(p, lr=lr))
    assert 0 < drift <= bound
    assert drift > 0.1 * bound  # the bound is tight enough to be informative


def test_a_sampled_bound_estimates_the_full_sum() -> None:
    """Observing every 5th step, each standing for itself and the 4 after it: while the gradients shrink (as they
    do when the loss falls) the estimate over-counts, so it stays a bound, and not a loose one (1.27x here)."""
    drift, bound = _drift_and_bound(lambda p: torch.optim.SGD(p, lr=0.1))
    sampled_drift, sampled = _drift_and_bound(lambda p: torch.optim.SGD(p, lr=0.1), stride=5)
    assert sampled_drift == drift  # observing never changes training
    assert drift <= bound <= sampled <= 1.5 * bound


def test_momentum_drift_is_within_the_enlarged_bound() -> None:
    drift, bound = _drift_and_bound(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))
    assert drift <= bound


@pytest.mark.parametrize(
    "make",
    [lambda p: torch.optim.Adam(p, lr=0.01), lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.05)],
    ids=["adam", "weight_decay"],
)
def test_adaptive_steps_and_weight_decay_exceed_the_bound(make) -> None:
    drift, bound = _drift_and_bound(make)
    assert drift > 2 * bound


def test_state_round_trip() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    (pair,) = [p for p in find_layer_pairs(model) if p.conserved]
    first = ExplainedDrift([(pair, None)])
    first.start(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    first.observe(optimizer)
    second = ExplainedDrift([(pair, None)])
    second.start(model)
    second.load_state_dict(first.state_dict())
    assert second.scalars() == first.scalars() and next(iter(first.scalars().values())) > 0
