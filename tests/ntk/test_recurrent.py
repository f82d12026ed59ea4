"""Recurrent layers on the generic path, and the vmap fallback that must not hide real errors.

``nn.GRU``, ``nn.RNN`` and float64 ``nn.LSTM`` fail under ``vmap`` (their fused kernels write into unbatched
buffers) with messages that do not mention vmap; the generic path then computes the rows example by example.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from regimescope.ntk import empirical_ntk, plan_ntk
from tests.ntk._faults import FailInBackward
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

RTOL = {torch.float64: 1e-10, torch.float32: 1e-4}


class Recurrent(nn.Module):
    """A recurrent layer over batch-first ``(n, T, 3)`` inputs (transposed inside when the layer is sequence-first),
    its last state through a linear head."""

    def __init__(self, cell: type[nn.RNNBase], batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.rnn = cell(3, 4, num_layers=2, batch_first=batch_first)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x if self.batch_first else x.transpose(0, 1))
        return self.head(out[:, -1] if self.batch_first else out[-1])


def _model(cell: type[nn.RNNBase], batch_first: bool, dtype: torch.dtype) -> Recurrent:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Recurrent(cell, batch_first).to(dtype)


def _inputs(n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(n, 5, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "sequence_first"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM, nn.RNN], ids=["gru", "lstm", "rnn"])
def test_recurrent_layers_match_the_reference(cell: type[nn.RNNBase], dtype: torch.dtype, batch_first: bool) -> None:
    model, x1, x2 = _model(cell, batch_first, dtype), _inputs(4, 1, dtype), _inputs(3, 2, dtype)

    kernel = empirical_ntk(model, x1, x2, kind="full", per_layer=True)

    assert kernel["rnn"].dtype == dtype
    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind="full", per_layer=True), RTOL[dtype])
    assert {b.name: b.rule for b in plan_ntk(model, x1).blocks} == {"rnn": "generic", "head": "linear"}


@pytest.mark.parametrize("implementation", ["per_sample", "full_batch"])
def test_gru_under_every_generic_implementation(implementation: str) -> None:
    model, x = _model(nn.GRU, True, torch.float64), _inputs(4, 1, torch.float64)
    for mode in ("eval", "train"):
        kernel = empirical_ntk(model, x, implementation=implementation if mode == "eval" else "auto", mode=mode)
        assert_kernels_close(kernel, reference_ntk(model, x, mode=mode), RTOL[torch.float64])


class _BrokenGeneric(nn.Module):
    """A generic block (a bare scale parameter) behind a node whose backward fails, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.fail = FailInBackward()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fail(x * self.scale))


def test_a_real_error_is_raised_not_hidden_by_the_fallback() -> None:
    """Under vmap and example by example alike: the error under vmap is raised, its cause the second failure."""
    with pytest.raises(RuntimeError, match="injected") as caught:
        empirical_ntk(_BrokenGeneric(), torch.randn(3, 3))

    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.__cause__ is not caught.value
    assert "injected" in str(caught.value.__cause__)
    notes = getattr(caught.value, "__notes__", None)
    assert notes is None or any("example by example" in note for note in notes)


@pytest.mark.parametrize("parametrized", [False, True], ids=["plain", "weight_norm"])
def test_the_model_keeps_its_cached_weights_and_still_deep_copies(parametrized: bool) -> None:
    """An RNN caches its weights in ``_flat_weights`` (a parametrized one recomputes them at every forward): after
    a kernel they are the model's own tensors again, not the engine's ``torch.func`` wrappers, so that
    ``copy.deepcopy`` (an EMA, ``AveragedModel``, a best-model snapshot) still works."""
    model, x = _model(nn.LSTM, True, torch.float32), _inputs(4, 1, torch.float32)
    if parametrized:
        parametrizations.weight_norm(model.rnn, "weight_hh_l0")
    cached = (list(model.rnn._flat_weights), list(model.rnn._flat_weight_refs))

    for implementation in ("auto", "per_sample", "full_batch"):
        empirical_ntk(model, x, implementation=implementation)
        assert all(a is b for a, b in zip(model.rnn._flat_weights, cached[0], strict=True))
        assert [ref() for ref in model.rnn._flat_weight_refs] == [ref() for ref in cached[1]]
        copy.deepcopy(model)
