"""Forwards that write into their own parameters in place (``nn.Embedding(max_norm=...)`` renormalises the rows it
looks up, a weight clamped under ``no_grad`` in forward, also through ``.data``): the engine never lets the write
reach the model's weights, measures the kernel the model has as trained, and copies only the weights written."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.attention.flex_attention import flex_attention

from regimescope.guards import ParameterWriteError, refusing_parameter_writes, written_in_place
from regimescope.ntk import empirical_ntk
from regimescope.probe import Probe
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk
from tests.robustness._attach_models import build, inputs_of, weight_versions, weights_untouched

WRITTEN = {"embedding_max_norm": "embedding.weight", "clamp_in_forward": "hidden.weight",
           "clamp_through_data": "hidden.weight"}


def _case(name: str) -> tuple[nn.Module, torch.Tensor]:
    model = build(name).double()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return model, inputs_of(name, model, 5)


@pytest.mark.parametrize("implementation", ["auto", "per_sample", "full_batch"])
@pytest.mark.parametrize("name", list(WRITTEN))
def test_weights_written_in_forward_are_measured_on_copies(name: str, implementation: str) -> None:
    model, x = _case(name)
    before = weight_versions(model)
    settled = copy.deepcopy(model)
    settled.settle(x)

    kernel = empirical_ntk(model, x, per_layer=True, implementation=implementation)

    assert weights_untouched(model, before), "the forward's in-place write reached the model's weights"
    assert_kernels_close(kernel, reference_ntk(settled, x, per_layer=True), 1e-10)
    assert [n for n, p in model.named_parameters() if written_in_place(p)] == [WRITTEN[name]]


def test_a_model_writing_no_weight_gets_no_copy() -> None:
    model, x = _case("clamp_in_forward")
    model.clamping = False
    empirical_ntk(model, x)
    assert not any(written_in_place(p) for p in model.parameters())


def test_a_write_no_copy_can_take_is_refused_before_it_lands() -> None:
    model, x = _case("writes_through_a_list")
    before = weight_versions(model)
    with pytest.raises(ParameterWriteError, match="hidden.weight.*after optimizer.step"):
        empirical_ntk(model, x)
    assert weights_untouched(model, before)


class CompiledParts(nn.Module):
    """A submodule compiled by ``torch.compile`` and a higher-order operator (``flex_attention``), which
    ``torch.compile`` refuses to compile under a dispatch mode that does not ignore its internals."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = torch.compile(nn.Linear(4, 8), backend="eager"), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.embed(x).unsqueeze(1)
        return self.head(flex_attention(q, q, q).mean((1, 2)))


def test_compiled_regions_and_higher_order_operators_run_under_the_write_check() -> None:
    model, x = CompiledParts(), torch.randn(3, 5, 4)
    with torch.no_grad():  # flex_attention has no backward on CPU
        assert refusing_parameter_writes(model, lambda: model(x)).shape == (3, 3)
    assert Probe(x).check(model) == 3
