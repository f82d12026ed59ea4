"""Layers run once for the whole batch (a position embedding of ``(1, T)`` ids, as in Hugging Face GPT-2, or of
``arange(T)`` with no batch dimension, as in nanoGPT): expanded to the batch, they take their rule, exact against the
float64 reference; where the expansion would change the model (a sum or a reshape over that dimension, a layer
called both per example and once for the batch), they take the generic path, still exact.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope.ntk import empirical_ntk, plan_ntk
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

RTOL = 1e-10
VOCAB, LENGTH, WIDTH = 7, 5, 4


class PositionNet(nn.Module):
    """Token plus position embeddings, ``tanh``, a linear head per position: ``(n, T)`` ids -> ``(n, T, 2)``.

    ``combine`` says how the position embedding of the ``(1, T)`` positions meets the ``(n, T, C)`` tokens:
    ``"broadcast"`` adds it (GPT-2), ``"unbatched"`` embeds ``arange(T)`` without a batch dimension (nanoGPT),
    ``"summed"`` sums it over its leading dimension first (expanding it to the batch would multiply it by ``n``),
    ``"reshaped"`` views it as ``(T, C)`` (expanding it makes the view fail), ``"mixed"`` embeds ``arange(T)``
    unbatched and the token ids with the same table (one layer called once for the batch and per example: no one
    expansion suits both calls, and giving the unbatched call's to the per-example one would break the forward).
    """

    def __init__(self, combine: str) -> None:
        super().__init__()
        self.combine = combine
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.tokens = nn.Embedding(VOCAB, WIDTH)
            self.positions = nn.Embedding(LENGTH, WIDTH)
            self.head = nn.Linear(WIDTH, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1])
        placed = self.positions(positions if self.combine in ("unbatched", "mixed") else positions.unsqueeze(0))
        if self.combine == "mixed":
            placed = placed + self.positions(ids % LENGTH)
        if self.combine == "summed":
            placed = placed.sum(dim=0)
        elif self.combine == "reshaped":
            placed = placed.view(ids.shape[1], WIDTH)
        return self.head(torch.tanh(self.tokens(ids) + placed))


class QueryNet(nn.Module):
    """One learned ``(1, C)`` query projected by a Linear and added to each encoded input: ``(n, 3)`` -> ``(n, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.query = nn.Parameter(torch.randn(1, 3))
            self.project = nn.Linear(3, 3)
            self.encode = nn.Linear(3, 3)
            self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.encode(x) + self.project(self.query)))


def _ids(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, LENGTH), generator=torch.Generator().manual_seed(seed))


def _vectors(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


CASES = {
    # name: (model, inputs(n, seed), the broadcast layer, the rule it must take)
    "position_embedding": (lambda: PositionNet("broadcast"), _ids, "positions", "embedding"),
    "unbatched_position": (lambda: PositionNet("unbatched"), _ids, "positions", "embedding"),
    "projected_query": (QueryNet, _vectors, "project", "linear"),
    "summed_position": (lambda: PositionNet("summed"), _ids, "positions", "generic"),
    "reshaped_position": (lambda: PositionNet("reshaped"), _ids, "positions", "generic"),
    "mixed_calls": (lambda: PositionNet("mixed"), _ids, "positions", "generic"),
}


@pytest.mark.parametrize("implementation", ["auto", "factored", "layer_per_sample"])
@pytest.mark.parametrize("kind", ["trace", "full"])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("case", list(CASES))
def test_broadcast_layers_match_the_reference(case: str, cross: bool, kind: str, implementation: str) -> None:
    build, inputs, _, _ = CASES[case]
    model = build().double()
    x1, x2 = inputs(4, 1), inputs(3, 2) if cross else None

    kernel = empirical_ntk(model, x1, x2, kind=kind, per_layer=True, dtype=torch.float64,
                           implementation=implementation)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind=kind, per_layer=True), RTOL)


@pytest.mark.parametrize("case", list(CASES))
def test_a_broadcast_layer_takes_its_rule_only_where_expanding_it_changes_nothing(case: str) -> None:
    build, inputs, layer, rule = CASES[case]
    plan = plan_ntk(build().double(), inputs(4, 1), dtype=torch.float64)

    assert {block.name: block.rule for block in plan.blocks}[layer] == rule


@pytest.mark.parametrize("memory", [1, 200_000, None], ids=["one_example", "three_of_five", "all_five"])
@pytest.mark.parametrize("combine", ["broadcast", "unbatched"])
def test_sample_chunks_expand_to_their_own_size(combine: str, memory: int | None) -> None:
    """The forwards over chunks of the examples expand the layer to each chunk's size, one example included. With
    all ``LENGTH`` examples in one chunk the unbatched layer's ``(LENGTH,)`` positions lead with the chunk's size:
    it is expanded as the probe pass found, never taken for batch-first."""
    model, x = PositionNet(combine).double(), _ids(LENGTH, 1)
    plan = plan_ntk(model, x, dtype=torch.float64, max_memory=memory)
    assert plan.collect_sample_chunk == {1: 1, 200_000: 3, None: LENGTH}[memory]

    kernel = empirical_ntk(model, x, per_layer=True, dtype=torch.float64, max_memory=memory)

    assert_kernels_close(kernel, reference_ntk(model, x, per_layer=True), RTOL)
