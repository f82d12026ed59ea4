"""The rule for Hugging Face GPT-2's ``Conv1D`` (a transposed linear layer), against the float64 reference.

Without ``transformers`` installed these tests are skipped; importing regimescope must never import it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from regimescope.ntk import empirical_ntk, plan_ntk
from tests.ntk._isolated import run_fresh
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

pytest.importorskip("transformers")

from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

RTOL = 1e-10


class _Stack(torch.nn.Module):
    """Conv1D(3 -> 5), tanh, Conv1D(5 -> 2), on inputs of any leading shape."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.first, self.second = Conv1D(5, 3), Conv1D(2, 5)
            torch.nn.init.normal_(self.first.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.tanh(self.first(x)))


def _inputs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("implementation", ["auto", "factored", "layer_per_sample"])
@pytest.mark.parametrize("kind", ["trace", "full"])
@pytest.mark.parametrize("positions", [(), (4,)], ids=["vectors", "sequences"])
def test_conv1d_alone_matches_the_reference(positions: tuple[int, ...], kind: str, implementation: str) -> None:
    model = _Stack().double()
    x1, x2 = _inputs((4, *positions, 3), 1), _inputs((3, *positions, 3), 2)

    kernel = empirical_ntk(model, x1, x2, kind=kind, per_layer=True, implementation=implementation)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind=kind, per_layer=True), RTOL)
    assert {b.name: b.rule for b in plan_ntk(model, x1, implementation=implementation).blocks} == {
        "first": "hf_conv1d", "second": "hf_conv1d"}


def _tiny_gpt2() -> Any:
    config = GPT2Config(vocab_size=7, n_positions=8, n_embd=8, n_layer=1, n_head=2, use_cache=False,
                        bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return GPT2LMHeadModel(config).double().eval()


def _tokens(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 7, (n, 3), generator=torch.Generator().manual_seed(seed))


def test_tiny_gpt2_matches_the_reference() -> None:
    model, x1, x2 = _tiny_gpt2(), _tokens(2, 1), _tokens(2, 2)

    kernel = empirical_ntk(model, x1, x2, per_layer=True)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, per_layer=True), RTOL)


def test_gpt2_block_plan_picks_the_conv1d_and_embedding_rules() -> None:
    """Every block takes a rule: the position embedding too, which reads ``(1, T)`` ids broadcast over the batch."""
    rules = {b.name: b.rule for b in plan_ntk(_tiny_gpt2(), _tokens(2, 1)).blocks}

    for layer in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
        assert rules[f"transformer.h.0.{layer}"] == "hf_conv1d"
    assert rules["transformer.h.0.ln_1"] == "norm"
    assert rules["transformer.wpe"] == "embedding"


def test_regimescope_does_not_import_transformers_to_recognise_conv1d() -> None:
    code = (
        "import sys, torch\n"
        "from regimescope.ntk import empirical_ntk\n"
        "empirical_ntk(torch.nn.Linear(3, 2), torch.randn(2, 3))\n"
        "print('transformers' in sys.modules)\n"
    )
    assert run_fresh(code).strip() == "False"
