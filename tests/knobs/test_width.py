"""The width knob: standard, NTK and muP parametrisations relative to a base width, through input multipliers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.knobs import at_width, multipliers
from regimescope.scenarios import InitSpec, make_student
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk


def _mlp(width: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, width, bias=False),
        nn.ReLU(),
        nn.Linear(width, width, bias=False),
        nn.ReLU(),
        nn.Linear(width, 2, bias=False),
    ).double()


def _effective(model: nn.Module) -> dict[str, torch.Tensor]:
    factors = multipliers(model)
    return {
        name: module.weight * factors.get(name, 1.0)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
    }


def test_at_the_base_width_and_in_the_standard_parametrisation_the_model_is_as_built() -> None:
    for model in (
        at_width(_mlp, 8, "standard"),
        at_width(_mlp, 8, "mup", base_width=8),
        at_width(_mlp, 32, "standard"),
    ):
        reference = _mlp(model[0].out_features)
        assert multipliers(model) == {}
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))


def test_ntk_keeps_the_effective_init_and_divides_the_rate_of_growing_fan_ins() -> None:
    model, reference = at_width(_mlp, 32, "ntk", base_width=8), _mlp(32)
    assert multipliers(model) == {"2": 0.5, "4": 0.5}
    for name, weight in _effective(model).items():
        torch.testing.assert_close(weight, dict(reference.named_modules())[name].weight)


def test_mup_scales_input_up_and_output_down_relative_to_the_base() -> None:
    model, reference = at_width(_mlp, 32, "mup", base_width=8), _mlp(32)
    assert multipliers(model) == {"0": 2.0, "4": 0.5}
    effective = _effective(model)
    torch.testing.assert_close(effective["0"], reference[0].weight)
    torch.testing.assert_close(effective["2"], reference[2].weight)
    torch.testing.assert_close(effective["4"], reference[4].weight / 2)  # output init variance / r
    torch.testing.assert_close(model[4].weight, reference[4].weight)


def test_the_engine_measures_the_kernel_of_the_multiplied_model_exactly() -> None:
    model = at_width(_mlp, 16, "mup", base_width=4)
    x = torch.randn(6, 3, dtype=torch.float64)
    expected = reference_ntk(model, x)
    assert_kernels_close(rs.empirical_ntk(model, x, dtype=torch.float64), expected, rtol=1e-9)
    layers = rs.empirical_ntk(model, x, per_layer=True, dtype=torch.float64)
    assert_kernels_close(layers, reference_ntk(model, x, per_layer=True), rtol=1e-9)


def test_a_factory_that_cannot_build_on_meta_is_built_for_real() -> None:
    def student(width: int) -> nn.Module:
        return make_student(InitSpec(scale=1.0, balance=None), 4, width, seed=0, bias=False)

    model = at_width(student, 64, "ntk", base_width=16)
    assert multipliers(model) == {"readout": pytest.approx(0.5)}
    torch.testing.assert_close(model.readout.weight, 2 * student(64).readout.weight)


def test_unknown_roles_and_missing_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="base_width"):
        at_width(_mlp, 16, "ntk")
    with pytest.raises(ValueError, match="parametrisation"):
        at_width(_mlp, 16, "mean-field", base_width=8)

    def embedded(width: int) -> nn.Module:
        return nn.Sequential(nn.Embedding(10, width), nn.Linear(width, 2))

    with pytest.raises(ValueError, match="0.weight grows with the width"):
        at_width(embedded, 16, "mup", base_width=8)
    assert multipliers(at_width(embedded, 16, "standard")) == {}
