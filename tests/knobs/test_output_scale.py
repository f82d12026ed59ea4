"""The output-scale knob: alpha f and Chizat's centred alpha (f - f_0), with the kernel scaled by alpha^2."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.conservation import find_layer_pairs
from regimescope.knobs import OutputScaled, scale_output


def _net() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).double()


def test_scaled_output_and_kernel_scale_by_alpha_and_alpha_squared() -> None:
    model, x = _net(), torch.randn(5, 4, dtype=torch.float64)
    scaled = scale_output(model, 3.0)
    torch.testing.assert_close(scaled(x), 3.0 * model(x))
    torch.testing.assert_close(
        rs.empirical_ntk(scaled, x, dtype=torch.float64), 9.0 * rs.empirical_ntk(model, x, dtype=torch.float64)
    )
    assert scaled.loss_scale == pytest.approx(1 / 9)
    assert [name for name, _ in scaled.named_parameters()] == [f"model.{n}" for n, _ in model.named_parameters()]


def test_centred_output_starts_at_zero_and_trains_only_the_copy() -> None:
    model, x = _net(), torch.randn(5, 4, dtype=torch.float64)
    scaled = scale_output(model, 10.0, centred=True)
    assert torch.equal(scaled(x), torch.zeros(5, 2, dtype=torch.float64))
    trainable = [name for name, p in scaled.named_parameters() if p.requires_grad]
    assert trainable == [f"model.{n}" for n, _ in model.named_parameters()]
    optimizer = torch.optim.SGD(scaled.parameters(), lr=0.01)
    (scaled(x) - 1).square().sum().backward()
    optimizer.step()
    assert not torch.equal(scaled(x), torch.zeros(5, 2, dtype=torch.float64))
    assert all(torch.equal(a, b) for a, b in zip(scaled.initial.parameters(), model.parameters()))


def test_the_wrapper_is_traced_so_the_monitor_finds_its_layer_pairs() -> None:
    pairs = {pair.name: pair.conserved for pair in find_layer_pairs(scale_output(_net(), 2.0, centred=True))}
    assert pairs["model.0-model.2"]


def test_bad_alpha_and_non_tensor_outputs_are_refused() -> None:
    with pytest.raises(ValueError, match="`alpha`"):
        scale_output(_net(), 0.0)

    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    with pytest.raises(TypeError, match="returning a tensor"):
        OutputScaled(Pair(), 2.0)(torch.zeros(2, 3))
