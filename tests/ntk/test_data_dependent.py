"""Models that branch on their inputs' values (as Hugging Face attention-mask code does) and attention keys' biases.

``torch.func.vmap`` cannot run a forward that calls ``bool(mask.all())``; the generic path then computes its
Jacobian rows example by example. An attention key's bias has an exactly zero gradient (softmax ignores a shift),
so its rule check compares rounding noise with rounding noise and must not send the layer to the generic path.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope import empirical_ntk
from regimescope.ntk import plan_ntk
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

VOCAB, T, WIDTH = 11, 5, 8


class MaskedAttention(nn.Module):
    """Token and (broadcast, not batch-first) position embeddings, one attention head with separate q/k/v layers
    with biases and a learned temperature (a parameter outside any layer, so the generic path has a block to
    compute), a branch on whether any position is masked, mean pooling and a 3-way head."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(T, WIDTH)
        self.query, self.key, self.value = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, 3)
        self.temperature = nn.Parameter(torch.tensor(WIDTH**0.5))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 3)``."""
        h = self.tokens(input_ids) + self.positions(torch.arange(input_ids.shape[1]).unsqueeze(0))
        scores = self.query(h) @ self.key(h).transpose(1, 2) / self.temperature
        if not bool(attention_mask.all()):
            scores = scores.masked_fill(attention_mask[:, None, :] == 0, -1e9)
        mixed = torch.softmax(scores, dim=-1) @ self.value(h)
        return self.head(torch.tanh(mixed).mean(1))


def _model_and_inputs() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (4, T))
    mask = torch.ones(4, T, dtype=torch.long)
    mask[1:, 3:] = 0
    return MaskedAttention().eval(), {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("implementation", ["auto", "per_sample"])
@pytest.mark.parametrize("kind", ["trace", "full"])
def test_a_model_that_branches_on_its_inputs_matches_the_reference(implementation: str, kind: str) -> None:
    model, x = _model_and_inputs()
    kernel = empirical_ntk(model, x, kind=kind, per_layer=True, dtype=torch.float64, implementation=implementation)
    assert_kernels_close(kernel, reference_ntk(model, x, kind=kind, per_layer=True), 1e-10)


def test_the_key_bias_keeps_its_layer_rule_in_float32() -> None:
    model, x = _model_and_inputs()
    forms = {block.name: block.form for block in plan_ntk(model, x).blocks}
    assert forms["key"] != "jacobian" and forms["positions"] != "jacobian"
    assert forms["(root)"] == "jacobian"
    kernel = empirical_ntk(model, x, per_layer=True)
    assert_kernels_close({name: k.double() for name, k in kernel.items()}, reference_ntk(model, x, per_layer=True),
                         1e-4)
