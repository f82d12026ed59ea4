"""The initialisation-scale knob: a rescaled copy, globally or per layer, with theory's homogeneity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope.knobs import scale_init


def _net(bias: bool = True) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6, bias=bias), nn.ReLU(), nn.Linear(6, 2, bias=bias)).double()


def test_every_trainable_parameter_is_scaled_on_a_copy() -> None:
    model = _net()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    scaled = scale_init(model, 0.25)
    assert scaled is not model
    for name, param in scaled.named_parameters():
        torch.testing.assert_close(param, before[name] * 0.25)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name])


def test_per_layer_factors_and_the_longest_name_wins() -> None:
    model = _net()
    scaled = scale_init(model, {"": 2.0, "2": 0.5})
    torch.testing.assert_close(scaled[0].weight, model[0].weight * 2)
    torch.testing.assert_close(scaled[2].weight, model[2].weight * 0.5)
    torch.testing.assert_close(scaled[2].bias, model[2].bias * 0.5)


def test_frozen_parameters_and_biases_on_request_keep_their_values() -> None:
    model = _net()
    model[0].weight.requires_grad_(False)
    scaled = scale_init(model, 3.0, biases=False)
    assert torch.equal(scaled[0].weight, model[0].weight)
    assert torch.equal(scaled[0].bias, model[0].bias)
    torch.testing.assert_close(scaled[2].weight, model[2].weight * 3)


def test_a_homogeneous_two_layer_network_scales_its_function_by_c_squared() -> None:
    model = _net(bias=False)
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(scale_init(model, 0.3)(x), 0.09 * model(x))


@pytest.mark.parametrize("factor", [0.0, -1.0, float("inf"), {"nope": 1.0}, {"": float("nan")}])
def test_bad_factors_are_refused_with_the_argument_named(factor: object) -> None:
    with pytest.raises(ValueError, match="`factor`"):
        scale_init(_net(), factor)
