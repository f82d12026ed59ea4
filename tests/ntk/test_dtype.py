"""The compute dtype follows the parameters unless ``dtype=`` is given (as in ``torch.func`` and neural-tangents)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from regimescope.capture.capture import layer_kernels
from regimescope.capture.config import CaptureConfig
from regimescope.ntk import compute_dtype, empirical_ntk
from regimescope.probe import Probe
from tests._models import build, inputs_for
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk


@pytest.mark.parametrize("implementation", ["auto", "per_sample"])
@pytest.mark.parametrize("name", ["mlp", "cnn_bn", "transformer_block"])
def test_float64_model_gets_float64_kernels_by_default(name: str, implementation: str) -> None:
    model = build(name).double()
    x = inputs_for(name, 4, seed=1)
    x = x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x

    kernel = empirical_ntk(model, x, per_layer=True, implementation=implementation)

    assert all(block.dtype == torch.float64 for block in kernel.values())
    assert_kernels_close(kernel, reference_ntk(model, x, per_layer=True), 1e-12)


def test_float32_model_stays_float32_and_an_explicit_dtype_wins() -> None:
    model, x = build("mlp"), inputs_for("mlp", 3, seed=1)
    assert empirical_ntk(model, x).dtype == torch.float32
    assert empirical_ntk(model, x, dtype=torch.float64).dtype == torch.float64
    assert empirical_ntk(model.double(), x.double(), dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize(
    ("dtypes", "expected"),
    [
        ((torch.float32,), torch.float32),
        ((torch.float64,), torch.float64),
        ((torch.float16,), torch.float32),
        ((torch.bfloat16,), torch.float32),
        ((torch.float32, torch.float64), torch.float64),
        ((torch.bfloat16, torch.float16), torch.float32),
    ],
    ids=["float32", "float64", "float16", "bfloat16", "mixed_64", "mixed_half"],
)
def test_compute_dtype_is_the_widest_parameter_dtype_at_least_float32(dtypes: tuple[torch.dtype, ...],
                                                                      expected: torch.dtype) -> None:
    model = nn.Sequential(*[nn.Linear(2, 2).to(dtype) for dtype in dtypes])
    assert compute_dtype(model) == expected
    assert compute_dtype(model, torch.float64) == torch.float64


def test_half_precision_model_is_measured_in_float32() -> None:
    model = build("mlp").to(torch.bfloat16)
    x = inputs_for("mlp", 3, seed=1).to(torch.bfloat16)
    kernel = empirical_ntk(model, x)

    assert kernel.dtype == torch.float32
    assert_kernels_close(kernel, reference_ntk(model, x), 1e-5)


def test_capture_config_default_follows_the_parameters() -> None:
    """``CaptureConfig()`` (and so ``RegimeMonitor()``) leaves the dtype to the parameters."""
    model = build("mlp").double()
    probe = Probe(inputs_for("mlp", 4, seed=1).double())

    blocks = layer_kernels(model, probe, CaptureConfig())

    assert CaptureConfig().dtype is None
    assert all(block.dtype == torch.float64 for block in blocks.values())
    assert_kernels_close(blocks, reference_ntk(model, probe.inputs, per_layer=True), 1e-12)


class MixedPrecision(nn.Module):
    """A hidden layer in one dtype and a head in another, the forward casting to each as a user's does
    (``self.head(h.float())``)."""

    def __init__(self, hidden: torch.dtype, head: torch.dtype) -> None:
        super().__init__()
        self.dtypes = (hidden, head)
        self.hidden, self.head = nn.Linear(3, 6).to(hidden), nn.Linear(6, 2).to(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.hidden(x.to(self.dtypes[0]))).to(self.dtypes[1]))

    def in_float64(self) -> MixedPrecision:
        """The same weights, all in float64, for the reference."""
        twin = copy.deepcopy(self).double()
        twin.dtypes = (torch.float64, torch.float64)
        return twin


@pytest.mark.parametrize("implementation", ["auto", "per_sample", "full_batch", "factored", "layer_per_sample"])
def test_a_model_mixing_dtypes_is_measured_in_each_layers_own_dtype(implementation: str) -> None:
    """float64 hidden layer, float32 head: no cast the forward does not do, the kernel in the widest dtype."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MixedPrecision(torch.float64, torch.float32)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))

    kernel = empirical_ntk(model, x, per_layer=True, implementation=implementation)

    assert all(block.dtype == torch.float64 for block in kernel.values())
    assert_kernels_close(kernel, reference_ntk(model.in_float64(), x, per_layer=True), 1e-5)
    assert [p.dtype for p in model.parameters()] == [torch.float64] * 2 + [torch.float32] * 2


def test_a_model_mixing_dtypes_passes_the_probe_check_and_is_captured() -> None:
    model = MixedPrecision(torch.float32, torch.float64)
    probe = Probe(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))

    assert probe.check(model) == 2
    blocks = layer_kernels(model, probe, CaptureConfig())
    assert_kernels_close(blocks, reference_ntk(model.in_float64(), probe.inputs, per_layer=True), 1e-5)


def test_an_explicit_dtype_a_mixed_model_cannot_run_in_fails_the_probe_check_with_the_fix() -> None:
    model = MixedPrecision(torch.float64, torch.float32)
    probe = Probe(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match=r"dtype=torch.float64 as asked.*runs only with dtype=None"):
        probe.check(model, dtype=torch.float64)
    assert probe.check(model) == 2
