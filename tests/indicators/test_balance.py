"""BalanceIndicator on snapshots taken before and after training."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.conservation import conserved_quantities, layer_pair
from regimescope.indicators.balance import BalanceIndicator
from regimescope.indicators.base import Context, Reference
from tests.conservation._nets import (
    AttentionNet,
    Branchy,
    FunctionalNet,
    NormMLP,
    deep_mlp,
    inputs_for,
    seeded,
    targets_for,
    train,
    two_layer,
)


def _snapshot(model: nn.Module, step: int) -> Snapshot:
    """What a capture with Need.WEIGHTS holds: detached copies of the trainable parameters."""
    return Snapshot(step, weights={n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})


def _context(model: nn.Module, learning_rates: dict[str, float] | None = None) -> Context:
    return Context(model=model, probe=None, learning_rates=learning_rates or {})


def _run(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, context: Context | None = None):
    context = context or _context(model)
    indicator = BalanceIndicator()
    indicator.setup(context)
    x = inputs_for(model, n=32)
    y = targets_for(model, x)
    init = _snapshot(model, 0)
    train(model, x, y, optimizer, steps)
    return indicator.compute(_snapshot(model, steps), init, context)


def test_declares_weights_and_the_init_reference() -> None:
    assert BalanceIndicator.needs == frozenset({Need.WEIGHTS})
    assert BalanceIndicator.reference is Reference.INIT


def test_small_step_gd_keeps_drift_near_zero_and_adam_does_not() -> None:
    gd_model = two_layer(hidden=8)
    gd = _run(gd_model, torch.optim.SGD(gd_model.parameters(), lr=1e-3), steps=500)
    adam_model = two_layer(hidden=8)
    adam = _run(adam_model, torch.optim.Adam(adam_model.parameters(), lr=1e-3), steps=500)
    assert gd.step == 500
    assert gd.scalars["regimescope/balance_drift/0-2"] < 1e-4
    assert adam.scalars["regimescope/balance_drift/0-2"] > 0.05


def test_values_match_conserved_quantities() -> None:
    model = deep_mlp()
    record = _run(model, torch.optim.SGD(model.parameters(), lr=0.01), steps=20)
    quantities = conserved_quantities(model)
    assert set(record.scalars) == {f"regimescope/{f}/{p}" for f in ("balance", "balance_drift") for p in quantities}
    for name, q in quantities.items():
        assert record.scalars[f"regimescope/balance/{name}"] == pytest.approx(float(q.rho.mean()), abs=1e-14)
        np.testing.assert_allclose(record.histograms[f"regimescope/balance_units/{name}"], q.delta.numpy(), atol=1e-14)


def test_drift_is_normalised_by_the_initial_scale() -> None:
    model = two_layer()
    context = _context(model)
    indicator = BalanceIndicator()
    indicator.setup(context)
    init = _snapshot(model, 0)
    with torch.no_grad():
        model[2].weight.mul_(2.0)  # |a_k|^2 -> 4 |a_k|^2
    record = indicator.compute(_snapshot(model, 1), init, context)
    a_sq = init.weights["2.weight"].square().sum(0)
    scale_0 = a_sq + init.weights["0.weight"].square().sum(1) + init.weights["0.bias"].square()
    expected = float((3 * a_sq).norm() / scale_0.norm())
    assert record.scalars["regimescope/balance_drift/0-2"] == pytest.approx(expected, rel=1e-12)


def test_missing_reference_means_no_drift() -> None:
    model = two_layer()
    context = _context(model)
    indicator = BalanceIndicator()
    indicator.setup(context)
    record = indicator.compute(_snapshot(model, 0), None, context)
    assert record.scalars["regimescope/balance_drift/0-2"] == 0.0


def test_unequal_rates_from_the_context_weight_delta() -> None:
    model = two_layer()
    rates = {"0.weight": 0.01, "0.bias": 0.01, "2.weight": 0.05, "2.bias": 0.05}
    context = _context(model, rates)
    indicator = BalanceIndicator()
    indicator.setup(context)
    record = indicator.compute(_snapshot(model, 0), None, context)
    expected = conserved_quantities(model, rates)["0-2"].delta.numpy()
    np.testing.assert_allclose(record.histograms["regimescope/balance_units/0-2"], expected, rtol=1e-14)


def test_non_conserved_pairs_are_logged_once_and_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    model = seeded(FunctionalNet)
    context = _context(model)
    indicator = BalanceIndicator()
    with caplog.at_level(logging.INFO, logger="regimescope.indicators.balance"):
        indicator.setup(context)
    assert [r.getMessage() for r in caplog.records] == [
        "The balance indicator reports 1 of 2 pair(s); not reported: 1 non-homogeneous (fc2-out). Reasons: "
        "BalanceIndicator.skipped."
    ]
    assert indicator.skipped == {
        "fc2-out": "torch.tanh between fc2 and out is not positively homogeneous: delta_k has no conservation meaning"
    }
    record = indicator.compute(_snapshot(model, 0), None, context)
    assert set(record.scalars) == {"regimescope/balance/fc1-fc2", "regimescope/balance_drift/fc1-fc2"}


def test_frozen_and_untrained_pairs_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    model = deep_mlp()
    model[0].requires_grad_(False)
    rates = {n: 0.1 for n, p in model.named_parameters() if p.requires_grad and not n.startswith("6.")}
    context = _context(model, rates)
    indicator = BalanceIndicator()
    with caplog.at_level(logging.INFO, logger="regimescope.indicators.balance"):
        indicator.setup(context)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "reports 1 of 3 pair(s); not reported: 1 frozen (0-2), 1 not trained by the optimizer (4-6)" in message
    assert "requires_grad=False" in indicator.skipped["0-2"]
    assert indicator.skipped["4-6"].startswith("No learning rate for ['6.weight']")
    record = indicator.compute(_snapshot(model, 0), None, context)
    assert set(record.histograms) == {"regimescope/balance_units/2-4"}


def test_without_conserved_pairs_only_the_diagnosis_is_reported() -> None:
    model = two_layer(nn.GELU())
    context = _context(model)
    indicator = BalanceIndicator()
    indicator.setup(context)
    assert indicator.applicable(context)  # the GELU pair is diagnosed, not reported
    init = _snapshot(model, 0)
    record = indicator.compute(_snapshot(model, 5), init, context)
    assert record.scalars == {}
    assert "non-homogeneous activation" in record.texts["regimescope/conservation/diagnosis"]


def test_not_applicable_without_any_pair() -> None:
    model = nn.Sequential(nn.Linear(3, 1))
    context = _context(model)
    indicator = BalanceIndicator()
    indicator.setup(context)
    assert not indicator.applicable(context)


def test_untraceable_model_fails_setup_and_explicit_pairs_work() -> None:
    model = Branchy()
    with pytest.raises(ValueError, match=r"pass pairs=\[\.\.\.\] to conserved_quantities or BalanceIndicator"):
        BalanceIndicator().setup(_context(model))
    indicator = BalanceIndicator(pairs=[layer_pair(model, "a", "b")])
    context = _context(model)
    indicator.setup(context)
    assert indicator.applicable(context)
    record = indicator.compute(_snapshot(model, 3), None, context)
    assert record.step == 3 and "regimescope/balance/a-b" in record.scalars


@pytest.mark.parametrize(("builder", "names"), [(NormMLP, {"norm-fc2"}), (AttentionNet, {"attn.qk", "attn.vo"})])
def test_norm_affine_and_attention_pairs_are_reported(builder, names: set[str]) -> None:
    model = seeded(builder)
    record = _run(model, torch.optim.SGD(model.parameters(), lr=1e-3), steps=20)
    reported = {name.split("/")[-1] for name in record.scalars if name.startswith("regimescope/balance_drift/")}
    assert reported == names
    assert all(value < 1e-3 for name, value in record.scalars.items() if "balance_drift" in name)


def test_pairs_broken_only_by_a_non_homogeneous_activation_are_kept_for_the_diagnosis() -> None:
    model = seeded(FunctionalNet)
    indicator = BalanceIndicator()
    indicator.setup(_context(model))
    assert [item.pair.name for item in indicator.tracked] == ["fc1-fc2"]
    assert [item.pair.name for item in indicator.non_homogeneous] == ["fc2-out"]
