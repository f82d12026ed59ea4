"""The per-unit and matrix quantities against direct formulas and theory.md section 4's lambda-balanced oracle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope.conservation import (
    PairRates,
    PairSquares,
    balance_drift,
    balance_matrix,
    find_layer_pairs,
    mean_balance,
    unit_balances,
    unit_deltas,
    unit_scales,
    unit_squares,
)
from tests.conservation._nets import conv_linear, gd_step, inputs_for, loss_gradients, seeded, targets_for, two_layer

RATES = PairRates(in_weight=0.02, in_bias=0.05, out_weight=0.3)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach() for name, param in model.named_parameters()}


def test_plain_delta_is_the_direct_formula() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    squares = unit_squares(pair, _weights(model))
    w, b, a = model[0].weight, model[0].bias, model[2].weight
    expected = a.square().sum(0) - w.square().sum(1) - b.square()
    torch.testing.assert_close(unit_deltas(squares), expected.detach(), rtol=0, atol=1e-14)
    torch.testing.assert_close(
        unit_scales(squares), (a.square().sum(0) + w.square().sum(1) + b.square()).detach(), rtol=0, atol=1e-14
    )


def test_pair_squares_are_unit_squares_computed_once_per_pair() -> None:
    model = conv_linear()
    weights = _weights(model)
    squares = PairSquares(weights)
    for pair in find_layer_pairs(model):
        assert squares.holds(pair)
        first = squares(pair)
        assert squares(pair) is first
        expected = unit_squares(pair, weights)
        for field in ("outgoing", "incoming", "bias", "out_bias"):
            assert torch.equal(getattr(first, field), getattr(expected, field))
    pair = find_layer_pairs(model)[0]
    partial = PairSquares({name: w for name, w in weights.items() if name != pair.in_weight})
    assert not partial.holds(pair)
    with pytest.raises(ValueError, match=pair.in_weight):
        partial(pair)


def test_rate_weighted_delta_is_the_direct_formula() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    squares = unit_squares(pair, _weights(model))
    w, b, a = model[0].weight, model[0].bias, model[2].weight
    expected = a.square().sum(0) / 0.3 - w.square().sum(1) / 0.02 - b.square() / 0.05
    torch.testing.assert_close(unit_deltas(squares, RATES), expected.detach(), rtol=0, atol=1e-12)


def test_rho_is_bounded_and_reaches_its_extremes() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    weights = _weights(model)
    rho = unit_balances(unit_squares(pair, weights))
    assert bool((rho.abs() <= 1).all())
    common_rate = unit_balances(unit_squares(pair, weights), PairRates(0.1, 0.1, 0.1))
    torch.testing.assert_close(rho, common_rate, rtol=1e-14, atol=0)
    upstream = {**weights, "0.weight": torch.zeros_like(weights["0.weight"]), "0.bias": torch.zeros(6)}
    downstream = {**weights, "2.weight": torch.zeros_like(weights["2.weight"])}
    dead = {**upstream, "2.weight": torch.zeros_like(weights["2.weight"])}
    assert torch.equal(unit_balances(unit_squares(pair, upstream)), torch.ones(6, dtype=torch.float64))
    assert torch.equal(unit_balances(unit_squares(pair, downstream)), -torch.ones(6, dtype=torch.float64))
    assert torch.equal(unit_balances(unit_squares(pair, dead)), torch.zeros(6, dtype=torch.float64))
    assert mean_balance(unit_squares(pair, dead)) is None  # 0 / 0: no balance, not "balanced"
    half_dead = {**weights, "2.weight": weights["2.weight"].clone(), "0.weight": weights["0.weight"].clone()}
    half_dead["0.weight"][:3], half_dead["0.bias"], half_dead["2.weight"][:, :3] = 0.0, torch.zeros(6), 0.0
    live = unit_balances(unit_squares(pair, half_dead))[3:]
    assert mean_balance(unit_squares(pair, half_dead)) == pytest.approx(float(live.mean()), rel=1e-14)


@pytest.mark.parametrize("rates", [None, RATES], ids=["plain", "rates"])
def test_matrix_diagonal_is_delta_and_trace_is_the_layer_norm_form(rates: PairRates | None) -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    weights = _weights(model)
    matrix = balance_matrix(pair, weights, rates)
    eta_out, eta_w, eta_b = (1.0, 1.0, 1.0) if rates is None else (rates.out_weight, rates.in_weight, rates.in_bias)
    layer_norm_form = (
        weights["2.weight"].square().sum() / eta_out
        - weights["0.weight"].square().sum() / eta_w
        - weights["0.bias"].square().sum() / eta_b
    )
    torch.testing.assert_close(torch.diagonal(matrix), unit_deltas(unit_squares(pair, weights), rates))
    torch.testing.assert_close(torch.trace(matrix), layer_norm_form, rtol=0, atol=1e-12)


def test_matrix_is_theory_delta_over_eta_in_eta_out() -> None:
    """theory.md: Delta = eta_in W_out^T W_out - eta_out W_in W_in^T, bias appended as a column of W_in."""
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    weights = _weights(model)
    eta_in, eta_out = 0.02, 0.3
    w_in = torch.cat([weights["0.weight"], weights["0.bias"][:, None]], dim=1)
    theory = eta_in * weights["2.weight"].T @ weights["2.weight"] - eta_out * w_in @ w_in.T
    matrix = balance_matrix(pair, weights, PairRates(eta_in, eta_in, eta_out))
    torch.testing.assert_close(eta_in * eta_out * matrix, theory, rtol=0, atol=1e-14)


def _lambda_balanced(lam: float, d: int = 5, h: int = 3, o: int = 4, seed: int = 0) -> nn.Sequential:
    """theory.md section 4: W_1 = R S_1 V^T, W_2 = U S_2 R^T with S_2^2 - S_1^2 = lambda."""
    generator = torch.Generator().manual_seed(seed)

    def orthogonal(n: int) -> torch.Tensor:
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        return q

    r, u, v = orthogonal(h), orthogonal(o), orthogonal(d)
    sigma = torch.rand(h, generator=generator, dtype=torch.float64) + 0.5
    root = torch.sqrt(lam**2 + 4 * sigma**2)
    s_1 = torch.zeros(h, d, dtype=torch.float64)
    s_2 = torch.zeros(o, h, dtype=torch.float64)
    s_1[range(h), range(h)] = torch.sqrt((-lam + root) / 2)
    s_2[range(h), range(h)] = torch.sqrt((lam + root) / 2)
    model = nn.Sequential(nn.Linear(d, h, bias=False), nn.Linear(h, o, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(r @ s_1 @ v.T)
        model[1].weight.copy_(u @ s_2 @ r.T)
    return model


@pytest.mark.parametrize("lam", [-1.5, 0.0, 2.0])
def test_lambda_balanced_initialisation_gives_lambda_identity(lam: float) -> None:
    model = _lambda_balanced(lam)
    pair = find_layer_pairs(model)[0]
    assert pair.matrix_conserved and not pair.has_bias
    matrix = balance_matrix(pair, _weights(model))
    torch.testing.assert_close(matrix, lam * torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_deep_linear_matrix_changes_by_eta_squared_gradient_gram_per_step() -> None:
    model = seeded(lambda: nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3)))
    pair = find_layer_pairs(model)[0]
    x = inputs_for(model)
    y = targets_for(model, x)
    before = balance_matrix(pair, _weights(model))
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, 0.05)
    after = balance_matrix(pair, _weights(model))
    g_out, g_in, g_b = grads["1.weight"], grads["0.weight"], grads["0.bias"]
    expected = 0.05**2 * (g_out.T @ g_out - g_in @ g_in.T - torch.outer(g_b, g_b))
    torch.testing.assert_close(after - before, expected, rtol=0, atol=1e-12)


def test_matrix_is_none_unless_both_layers_are_linear_with_one_column_per_unit() -> None:
    model = conv_linear()
    pair = find_layer_pairs(model)[0]
    assert balance_matrix(pair, _weights(model)) is None


def test_drift_is_relative_to_the_initial_scale() -> None:
    delta_0 = torch.tensor([0.0, 0.0], dtype=torch.float64)
    scale_0 = torch.tensor([3.0, 4.0], dtype=torch.float64)
    delta_t = torch.tensor([0.5, 0.0], dtype=torch.float64)
    assert balance_drift(delta_t, delta_0, scale_0) == pytest.approx(0.1)
    zero = torch.zeros(2, dtype=torch.float64)
    assert balance_drift(zero, zero, zero) is None  # no initial scale: undefined, never inf
    assert balance_drift(delta_t, zero, zero) is None


def test_missing_weight_says_which_and_why() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    weights = _weights(model)
    del weights["0.bias"]
    with pytest.raises(ValueError, match=r"weights has no entry '0.bias', needed by pair 0-2"):
        unit_squares(pair, weights)


def test_mismatched_weight_shape_is_reported() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    weights = {**_weights(model), "2.weight": torch.zeros(2, 7, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"Outgoing weight 2.weight has shape \(2, 7\); expected \(out, 6\)"):
        unit_squares(pair, weights)


def test_float32_weights_are_computed_in_float64() -> None:
    model = two_layer().float()
    pair = find_layer_pairs(model)[0]
    assert unit_deltas(unit_squares(pair, _weights(model))).dtype == torch.float64


@pytest.mark.parametrize("net", [two_layer, conv_linear])
def test_squares_in_the_weights_own_dtype_agree_with_float64(net) -> None:
    model = net().float()
    for pair in find_layer_pairs(model):
        exact = unit_squares(pair, _weights(model))
        fast = unit_squares(pair, _weights(model), dtype=None)
        for role in ("outgoing", "incoming", "bias"):
            value = getattr(fast, role)
            assert value.dtype == torch.float64
            torch.testing.assert_close(value, getattr(exact, role), rtol=1e-6, atol=0)
