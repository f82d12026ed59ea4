"""Scenario 1: conservation, measured by the monitor (theory.md section 2).

The monitor's per-unit balance ``delta_k`` (``regimescope/balance_units/<pair>``) follows the exact per-step
identity ``delta_k^+ - delta_k = eta^2 (|g_a|^2 - |g_w|^2 - g_b^2)`` to float64 precision in every kind of pair, under
full-batch and minibatch steps; the drift at fixed training time shrinks with the step for SGD and not for Adam or a
tanh, and coupled weight decay decays ``delta`` by ``exp(-2 eta lambda steps)``. The monitor's drift diagnosis names
each case.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from regimescope.conservation import find_pairs
from regimescope.probe import Probe
from regimescope.scenarios import Setup
from tests.conservation._nets import (
    AttentionNet,
    FunctionalNet,
    ResidualCNN,
    ResidualMLP,
    conv_linear,
    deep_mlp,
    inputs_for,
    seeded,
    signed_gradient_balance,
    targets_for,
    two_layer,
)
from tests.theory._runs import Run, monitored_run

DIAGNOSIS = "regimescope/conservation/diagnosis"
ATOL = 1e-12


def _setup(model: nn.Module, n: int = 32) -> Setup:
    x = inputs_for(model, n=n)
    y = targets_for(model, x)
    return Setup(model, x, y, 0.0, 0, 1.0 / n, Probe(x[:8], y[:8]))


MODELS = {
    "deep_mlp": deep_mlp,
    "conv_pool_flatten_linear": conv_linear,
    "residual_block": lambda: seeded(ResidualMLP),
    "resnet_block_batchnorm": lambda: seeded(ResidualCNN),
    "multihead_attention": lambda: seeded(AttentionNet),
}


@pytest.mark.slow
@pytest.mark.parametrize("minibatch", [False, True], ids=["gd", "sgd"])
@pytest.mark.parametrize("builder", MODELS.values(), ids=MODELS.keys())
def test_measured_balance_follows_the_per_step_identity(builder, minibatch: bool) -> None:
    setup = _setup(builder())
    pairs = [pair for pair in find_pairs(setup.model) if pair.conserved]
    eta, steps = 0.05, 6
    gradients = []
    order = torch.randperm(32, generator=torch.Generator().manual_seed(0))

    def record_gradients(step: int) -> None:
        gradients.append({name: p.grad.detach().clone() for name, p in setup.model.named_parameters()})

    run = monitored_run(
        setup,
        lr=eta,
        steps=steps,
        schedule=lambda step: True,
        batch=(lambda step: order[8 * (step % 4) : 8 * (step % 4) + 8]) if minibatch else None,
        after_backward=record_gradients,
    )
    assert pairs
    for pair in pairs:
        _, deltas = run.sink.histograms(f"regimescope/balance_units/{pair.name}")
        assert len(deltas) == steps + 1
        expected = np.stack([eta**2 * signed_gradient_balance(pair, g).numpy() for g in gradients])
        assert np.abs(expected).max() > 1e3 * ATOL
        np.testing.assert_allclose(np.diff(np.stack(deltas), axis=0), expected, rtol=0, atol=ATOL)


def _drift_run(optimizer_factory, eta: float, time: float, activation: nn.Module | None = None) -> Run:
    model = two_layer(activation, seed=3, hidden=8)
    setup = _setup(model, n=64)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    steps = round(time / eta)
    return monitored_run(
        setup,
        steps=steps,
        optimizer=optimizer_factory(model.parameters(), eta),
        every=steps,
        batch=lambda step: order[8 * (step % 8) : 8 * (step % 8) + 8],
    )


def _diagnosis(run: Run) -> str:
    return run.sink.texts(DIAGNOSIS)[1][-1]


@pytest.mark.slow
def test_sgd_drift_at_fixed_time_shrinks_with_the_step_and_is_called_finite_steps() -> None:
    runs = [_drift_run(lambda p, lr: torch.optim.SGD(p, lr=lr), eta, time=10.0) for eta in (0.2, 0.1, 0.05)]
    drifts = [run.last("regimescope/balance_drift/0-2") for run in runs]
    for larger, smaller in zip(drifts, drifts[1:]):
        assert 1.6 < larger / smaller < 2.6, drifts
    assert "`0-2`: finite-step (SGD-scale) drift" in _diagnosis(runs[0])


@pytest.mark.slow
def test_adam_drift_does_not_shrink_with_the_step_and_is_called_adaptive() -> None:
    runs = [_drift_run(lambda p, lr: torch.optim.Adam(p, lr=lr), eta, time=0.5) for eta in (0.004, 0.001)]
    drifts = [run.last("regimescope/balance_drift/0-2") for run in runs]
    assert drifts[1] > 0.7 * drifts[0] > 1e-3
    assert "`0-2`: adaptive optimizer" in _diagnosis(runs[1])


@pytest.mark.slow
def test_tanh_pair_drifts_at_first_order_and_is_called_non_homogeneous() -> None:
    model = seeded(FunctionalNet)
    run = monitored_run(_setup(model), lr=0.01, steps=100, every=100)
    text = _diagnosis(run)
    assert "`fc1-fc2`: consistent with gradient flow" in text
    assert "`fc2-out`: non-homogeneous activation" in text
    assert "regimescope/balance/fc2-out" not in run.sink.tags()


@pytest.mark.slow
def test_coupled_weight_decay_matches_the_exponential_and_is_called_weight_decay() -> None:
    eta, decay, steps = 1e-3, 0.5, 1000
    model = two_layer(hidden=8)
    run = monitored_run(
        _setup(model, n=64),
        steps=steps,
        every=steps,
        optimizer=torch.optim.SGD(model.parameters(), lr=eta, weight_decay=decay),
    )
    _, deltas = run.sink.histograms("regimescope/balance_units/0-2")
    np.testing.assert_allclose(
        deltas[-1], deltas[0] * np.exp(-2 * eta * decay * steps), rtol=0, atol=2e-3 * np.abs(deltas[0]).max()
    )
    assert "`0-2`: weight decay" in _diagnosis(run) and "consistent with it" in _diagnosis(run)
