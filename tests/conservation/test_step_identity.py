"""Scenario 6.1: the exact per-step change of delta_k under gradient descent (theory.md section 2)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from regimescope.conservation import (
    attention_pairs,
    balance_matrix,
    conserved_quantities,
    find_layer_pairs,
    find_pairs,
    pair_rates,
    unit_deltas,
    unit_squares,
)
from tests.conservation._nets import (
    AttentionNet,
    LinearAttention,
    NormMLP,
    ResidualCNN,
    ResidualMLP,
    conv_conv,
    conv_linear,
    deep_mlp,
    gd_step,
    inputs_for,
    loss_gradients,
    seeded,
    signed_gradient_balance,
    targets_for,
    two_layer,
    unit_gradient_squares,
)

ATOL = 1e-12
ETA = 0.05

def _weight_normed_first_layer(legacy: bool) -> nn.Module:
    """:func:`deep_mlp` with its first layer weight-normed: ``g_k`` takes the place of ``w_k`` in pair ``0-2``."""
    model = deep_mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's deprecation of the legacy weight_norm
        (nn.utils.weight_norm if legacy else nn.utils.parametrizations.weight_norm)(model[0])
    return model


CONSERVED_MODELS = {
    "weight_norm_incoming": lambda: _weight_normed_first_layer(legacy=False),
    "legacy_weight_norm_incoming": lambda: _weight_normed_first_layer(legacy=True),
    "relu": lambda: two_layer(nn.ReLU()),
    "leaky_relu": lambda: two_layer(nn.LeakyReLU(0.1)),
    "identity": lambda: two_layer(nn.Identity()),
    "deep_mlp": deep_mlp,
    "conv_maxpool_conv": conv_conv,
    "conv_pool_flatten_linear": conv_linear,
}


def _deltas(model: nn.Module, lrs: object = None) -> dict[str, torch.Tensor]:
    return {name: q.delta for name, q in conserved_quantities(model, lrs).items()}


@pytest.mark.parametrize("builder", CONSERVED_MODELS.values(), ids=CONSERVED_MODELS.keys())
def test_equal_rates_step_changes_delta_by_eta_squared_gradient_balance(builder) -> None:
    model = builder()
    x = inputs_for(model)
    y = targets_for(model, x)
    pairs = find_layer_pairs(model)
    assert pairs and all(p.conserved for p in pairs)
    before = _deltas(model)
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, ETA)
    after = _deltas(model)
    for pair in pairs:
        g_a, g_w, g_b = unit_gradient_squares(pair, grads)
        expected = ETA**2 * (g_a - g_w - g_b)
        assert expected.abs().max() > 1e4 * ATOL  # the step moves delta far beyond the tolerance
        torch.testing.assert_close(after[pair.name] - before[pair.name], expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("builder", CONSERVED_MODELS.values(), ids=CONSERVED_MODELS.keys())
def test_per_parameter_rates_step_matches_theory(builder) -> None:
    model = builder()
    x = inputs_for(model)
    y = targets_for(model, x)
    names = [name for name, _ in model.named_parameters()]
    rates = {name: 0.01 * (1 + index % 3) + 0.005 * index for index, name in enumerate(names)}
    pairs = find_layer_pairs(model)
    before = _deltas(model, rates)
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, rates)
    after = _deltas(model, rates)
    for pair in pairs:
        g_a, g_w, g_b = unit_gradient_squares(pair, grads)
        eta_out, eta_w, eta_b = rates[pair.out_weight], rates[pair.in_weight], rates[pair.in_bias]
        expected = eta_out * g_a - eta_w * g_w - eta_b * g_b
        torch.testing.assert_close(after[pair.name] - before[pair.name], expected, rtol=0, atol=ATOL)


def test_per_layer_rates_match_theory_formula_for_scaled_delta() -> None:
    """theory.md: eta_in eta_out delta_k changes by eta_in eta_out (eta_out |g_a|^2 - eta_in (|g_w|^2 + g_b^2))."""
    model = two_layer()
    x = inputs_for(model)
    y = targets_for(model, x)
    eta_in, eta_out = 0.02, 0.07
    groups = [{"params": model[0].parameters(), "lr": eta_in}, {"params": model[2].parameters()}]
    optimizer = torch.optim.SGD(groups, lr=eta_out)
    pair = find_layer_pairs(model)[0]
    before = _deltas(model, optimizer)[pair.name]
    grads = loss_gradients(model, x, y)
    optimizer.zero_grad()
    for name, param in model.named_parameters():
        param.grad = grads[name].clone()
    optimizer.step()
    after = _deltas(model, optimizer)[pair.name]
    g_a, g_w, g_b = unit_gradient_squares(pair, grads)
    expected = eta_in * eta_out * (eta_out * g_a - eta_in * (g_w + g_b))
    torch.testing.assert_close(eta_in * eta_out * (after - before), expected, rtol=0, atol=ATOL)


def test_tanh_breaks_the_identity_at_first_order() -> None:
    model = two_layer(nn.Tanh())
    x = inputs_for(model)
    y = targets_for(model, x)
    pair = find_layer_pairs(model)[0]
    assert not pair.conserved
    weights_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, ETA)
    weights_after = {n: p.detach().clone() for n, p in model.named_parameters()}
    change = unit_deltas(unit_squares(pair, weights_after)) - unit_deltas(unit_squares(pair, weights_before))
    g_a, g_w, g_b = unit_gradient_squares(pair, grads)
    residual = change - ETA**2 * (g_a - g_w - g_b)
    assert residual.abs().max() > 1e6 * ATOL


def test_pair_rates_are_plain_when_rates_are_equal() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    assert pair_rates(pair, {n: 0.3 for n, _ in model.named_parameters()}) is None


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


PAIR_KINDS = {
    "residual_block_units": (lambda: seeded(ResidualMLP), {"fc1-fc2"}),
    "conv_batchnorm_affine_eval": (lambda: seeded(ResidualCNN).eval(), {"bn1-conv2"}),
    "conv_batchnorm_affine_train": (lambda: seeded(ResidualCNN).train(), {"bn1-conv2"}),
    "layernorm_affine": (lambda: seeded(NormMLP), {"norm-fc2"}),
    "multihead_attention": (lambda: seeded(AttentionNet).eval(), {"attn.qk", "attn.vo"}),
}


def _conserved(model: nn.Module) -> list:
    if isinstance(model, LinearAttention):
        return attention_pairs(model, q="q", k="k", v="v", o="o", heads=2)
    return [pair for pair in find_pairs(model) if pair.conserved]


@pytest.mark.parametrize(("builder", "names"), PAIR_KINDS.values(), ids=PAIR_KINDS.keys())
def test_every_pair_kind_changes_by_eta_squared_signed_gradient_balance(builder, names) -> None:
    """Residual-block units, norm affines (BatchNorm in eval and train mode, LayerNorm) and attention heads."""
    model = builder()
    pairs = _conserved(model)
    assert {pair.name for pair in pairs} >= names
    x = inputs_for(model)
    y = targets_for(model, x)
    before = _weights(model)
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, ETA)
    after = _weights(model)
    for pair in pairs:
        change = unit_deltas(unit_squares(pair, after)) - unit_deltas(unit_squares(pair, before))
        expected = ETA**2 * signed_gradient_balance(pair, grads)
        assert expected.abs().max() > 1e3 * ATOL, pair.name
        torch.testing.assert_close(change, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("builder", [lambda: seeded(AttentionNet).eval(), lambda: seeded(LinearAttention)],
                         ids=["multihead", "linear_projections"])
def test_attention_head_matrices_change_by_eta_squared_gradient_gram(builder) -> None:
    """Per head: W_Q W_Q^T - W_K W_K^T and W_O^T W_O - W_V W_V^T (biases as columns) move by eta^2 (G G^T terms)."""
    model = builder()
    x = inputs_for(model)
    y = targets_for(model, x)
    before = _weights(model)
    grads = loss_gradients(model, x, y)
    gd_step(model, grads, ETA)
    after = _weights(model)
    for pair in _conserved(model):
        change = balance_matrix(pair, after) - balance_matrix(pair, before)
        expected = ETA**2 * balance_matrix(pair, grads)
        assert (change - torch.diag(torch.diagonal(change))).abs().max() > 1e3 * ATOL
        torch.testing.assert_close(change, expected, rtol=0, atol=ATOL)
