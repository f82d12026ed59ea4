"""Initialisations of the demo student: exact per-unit balance, scale, mirroring, parametrisation."""

from __future__ import annotations

import math

import pytest
import torch

from regimescope.scenarios import InitSpec, Parametrisation, make_student, unit_magnitudes
from regimescope.scenarios.student import TwoLayerReLU

SCALES_AND_BALANCES = [(0.05, 0.0), (0.05, 1.0), (0.05, -2.0), (3.0, 0.0), (1e-3, 5.0), (1e-3, -5.0), (2.0, 0.3)]


def _unit_norms(model: TwoLayerReLU) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit ``a_k^2`` and ``|w_k|^2 + b_k^2``."""
    incoming = model.hidden.weight.detach().pow(2).sum(1)
    if model.hidden.bias is not None:
        incoming = incoming + model.hidden.bias.detach().pow(2)
    return model.readout.weight.detach()[0].pow(2), incoming


@pytest.mark.parametrize(("scale", "balance"), SCALES_AND_BALANCES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mirrored", [True, False])
def test_every_unit_has_the_requested_balance(scale: float, balance: float, bias: bool, mirrored: bool) -> None:
    model = make_student(InitSpec(scale, balance, mirrored=mirrored), d=8, width=64, seed=3, bias=bias)
    out_sq, in_sq = _unit_norms(model)
    residual = out_sq - in_sq - balance
    assert residual.abs().max() <= 1e-14 * (out_sq + in_sq).max()
    torch.testing.assert_close(out_sq.sqrt() * in_sq.sqrt(), torch.full_like(out_sq, scale**2), rtol=1e-12, atol=0)


def test_balance_is_exact_in_float32() -> None:
    model = make_student(InitSpec(0.05, -2.0), d=8, width=64, seed=0, dtype=torch.float32)
    out_sq, in_sq = _unit_norms(model)
    assert model.hidden.weight.dtype == torch.float32
    assert (out_sq.double() - in_sq.double() + 2.0).abs().max() <= 1e-6 * 2.0


@pytest.mark.parametrize(("scale", "balance"), SCALES_AND_BALANCES)
def test_unit_magnitudes_solve_balance_and_product(scale: float, balance: float) -> None:
    out_norm, in_norm = unit_magnitudes(scale, balance)
    assert out_norm**2 - in_norm**2 == pytest.approx(balance, abs=1e-14 * (out_norm**2 + in_norm**2))
    assert out_norm * in_norm == pytest.approx(scale**2, rel=1e-14)


def test_balance_sign_sets_which_layer_is_small() -> None:
    upstream_out, upstream_in = unit_magnitudes(0.05, 1.0)
    downstream_out, downstream_in = unit_magnitudes(0.05, -1.0)
    assert upstream_in < 0.01 < 1.0 <= upstream_out
    assert downstream_out < 0.01 < 1.0 <= downstream_in
    assert unit_magnitudes(0.05, 0.0) == pytest.approx((0.05, 0.05), rel=1e-15)


def test_mirrored_student_starts_at_the_zero_function() -> None:
    model = make_student(InitSpec(3.0, 0.0), d=8, width=64, seed=0)
    x = torch.randn(32, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert model(x).abs().max() <= 1e-12


def test_ntk_parametrisation_uses_gaussian_weights_and_multipliers() -> None:
    model = make_student(InitSpec(1.0, None, Parametrisation.NTK), d=8, width=4096, seed=0)
    assert model.input_scale == pytest.approx(8**-0.5)
    assert model.output_scale == pytest.approx(4096**-0.5)
    for tensor in (model.hidden.weight, model.hidden.bias, model.readout.weight):
        assert tensor.std().item() == pytest.approx(1.0, rel=0.05)
    x = torch.randn(256, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hidden = model.hidden(model.input_scale * x)
    assert hidden.var().item() == pytest.approx(2.0, rel=0.1), "w.x/sqrt(d) + b should have variance |x|^2/d + 1"


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    first = make_student(InitSpec(0.05, 1.0), d=4, width=10, seed=7)
    second = make_student(InitSpec(0.05, 1.0), d=4, width=10, seed=7)
    other = make_student(InitSpec(0.05, 1.0), d=4, width=10, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name])
    assert not torch.equal(first.hidden.weight, other.hidden.weight)


def test_both_signs_of_outgoing_weights_appear_without_mirroring() -> None:
    model = make_student(InitSpec(1.0, 0.0, mirrored=False), d=4, width=200, seed=0)
    signs = model.readout.weight.sign()
    assert (signs > 0).any() and (signs < 0).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "`scale` must be a positive"),
        ({"scale": math.inf}, "`scale` must be a positive"),
        ({"scale": 1.0, "balance": math.nan}, "`balance` must be a finite"),
    ],
)
def test_invalid_init_spec_is_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InitSpec(**kwargs)


def test_odd_width_with_mirroring_is_rejected_with_a_fix() -> None:
    with pytest.raises(ValueError, match="mirrored=False"):
        make_student(InitSpec(1.0), d=4, width=5, seed=0)
    assert make_student(InitSpec(1.0, mirrored=False), d=4, width=5, seed=0).readout.weight.shape == (1, 5)


@pytest.mark.parametrize(("d", "width"), [(0, 4), (4, 0)])
def test_non_positive_sizes_are_rejected(d: int, width: int) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        make_student(InitSpec(1.0), d=d, width=width, seed=0)
