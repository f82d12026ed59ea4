"""Attention heads: which rows form each head's conserved pair, and the GL(d_head) symmetry behind them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from regimescope.conservation import (
    Break,
    attention_pairs,
    balance_matrix,
    conserved_quantities,
    find_attention_pairs,
    find_layer_pairs,
    find_pairs,
    unit_deltas,
    unit_squares,
)
from tests.conservation._nets import AttentionNet, LinearAttention, inputs_for, seeded

HEADS, HEAD_DIM = 2, 4


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_multihead_attention_gives_a_query_key_and_a_value_output_pair() -> None:
    model = seeded(AttentionNet)
    qk, vo = find_attention_pairs(model)
    assert (qk.name, vo.name) == ("attn.qk", "attn.vo")
    assert (qk.units, qk.heads, qk.matrix_blocks) == (8, HEADS, HEADS)
    assert qk.parameter_names == ("attn.in_proj_weight", "attn.in_proj_bias")
    assert vo.parameter_names == ("attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight")
    w, b = model.attn.in_proj_weight.detach(), model.attn.in_proj_bias.detach()
    out = model.attn.out_proj.weight.detach()
    squares = unit_squares(qk, _weights(model))
    torch.testing.assert_close(squares.outgoing, w[:8].square().sum(1), rtol=0, atol=1e-14)
    torch.testing.assert_close(squares.out_bias, b[:8].square(), rtol=0, atol=1e-14)
    torch.testing.assert_close(squares.incoming, w[8:16].square().sum(1), rtol=0, atol=1e-14)
    torch.testing.assert_close(squares.bias, b[8:16].square(), rtol=0, atol=1e-14)
    squares = unit_squares(vo, _weights(model))
    torch.testing.assert_close(squares.outgoing, out.square().sum(0), rtol=0, atol=1e-14)
    torch.testing.assert_close(squares.incoming + squares.bias, w[16:].square().sum(1) + b[16:].square())


def _transform_heads(model: AttentionNet, seed: int) -> None:
    """Apply W_Q^h -> G W_Q^h, W_K^h -> G^-T W_K^h, W_V^h -> H W_V^h, W_O^h -> W_O^h H^-1 per head (biases too)."""
    generator = torch.Generator().manual_seed(seed)
    attn = model.attn
    with torch.no_grad():
        for h in range(HEADS):
            rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
            g = torch.eye(HEAD_DIM, dtype=torch.float64) + 0.5 * torch.randn(
                HEAD_DIM, HEAD_DIM, generator=generator, dtype=torch.float64
            )
            m = torch.eye(HEAD_DIM, dtype=torch.float64) + 0.5 * torch.randn(
                HEAD_DIM, HEAD_DIM, generator=generator, dtype=torch.float64
            )
            for offset, transform in ((0, g), (8, torch.linalg.inv(g).T), (16, m)):
                block = slice(offset + rows.start, offset + rows.stop)
                attn.in_proj_weight[block] = transform @ attn.in_proj_weight[block]
                attn.in_proj_bias[block] = transform @ attn.in_proj_bias[block]
            attn.out_proj.weight[:, rows] = attn.out_proj.weight[:, rows] @ torch.linalg.inv(m)


def test_the_pairs_rows_are_the_heads_of_the_real_module() -> None:
    """The function is invariant under per-head GL(d_head) maps of exactly the rows the pairs read."""
    model = seeded(AttentionNet).eval()
    x = inputs_for(model)
    with torch.no_grad():
        reference = model(x)
        _transform_heads(model, seed=0)
        torch.testing.assert_close(model(x), reference, rtol=1e-10, atol=1e-12)


def test_matrix_is_block_diagonal_with_delta_on_its_diagonal() -> None:
    model = seeded(AttentionNet)
    weights = _weights(model)
    for pair in find_attention_pairs(model):
        matrix = balance_matrix(pair, weights)
        assert matrix.shape == (8, 8)
        assert matrix[:HEAD_DIM, HEAD_DIM:].abs().max() == 0 and matrix[HEAD_DIM:, :HEAD_DIM].abs().max() == 0
        assert matrix[:HEAD_DIM, :HEAD_DIM].abs().max() > 0
        torch.testing.assert_close(torch.diagonal(matrix), unit_deltas(unit_squares(pair, weights)))


def test_separate_projections_read_their_own_parameters() -> None:
    model = nn.Sequential()
    model.attn = nn.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=True, dtype=torch.float64)
    qk, vo = find_attention_pairs(model)
    assert qk.out_weight == "attn.q_proj_weight" and qk.in_weight == "attn.k_proj_weight"
    assert vo.in_weight == "attn.v_proj_weight"
    assert unit_squares(vo, _weights(model)).incoming.shape == (6,)


def test_add_bias_kv_is_not_conserved_and_says_why() -> None:
    model = nn.Sequential()
    model.attn = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    for pair in find_attention_pairs(model):
        assert not pair.conserved and pair.breaks == {Break.UNMODELLED} and "add_bias_kv" in pair.reason


def test_linear_projections_pairs_and_rates() -> None:
    model = seeded(LinearAttention)
    qk, vo = attention_pairs(model, q="q", k="k", v="v", o="o", heads=2)
    assert (qk.name, qk.in_weight, qk.out_bias, vo.out_weight) == ("qk", "k.weight", "q.bias", "o.weight")
    rates = {name: 0.1 for name, _ in model.named_parameters()} | {"q.bias": 0.4}
    delta = conserved_quantities(model, rates, pairs=[qk])["qk"].delta
    expected = (
        model.q.weight.square().sum(1) / 0.1
        + model.q.bias.square() / 0.4
        - model.k.weight.square().sum(1) / 0.1
        - model.k.bias.square() / 0.1
    )
    torch.testing.assert_close(delta, expected.detach(), rtol=1e-14, atol=0)


def test_frozen_projection_is_not_conserved() -> None:
    model = seeded(LinearAttention)
    model.k.requires_grad_(False)
    qk, vo = attention_pairs(model, q="q", k="k", v="v", o="o", heads=2)
    assert not qk.conserved and qk.breaks == {Break.FROZEN} and vo.conserved


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q": "missing"}, r"The query projection 'missing' is not a submodule"),
        ({"heads": 4}, r"expected equal widths divisible by heads = 4"),
    ],
)
def test_linear_projection_errors_say_what_is_wrong(kwargs: dict, message: str) -> None:
    arguments = {"q": "q", "k": "k", "v": "v", "o": "o", "heads": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        attention_pairs(seeded(LinearAttention), **arguments)


def test_head_squares_in_the_weights_own_dtype_agree_with_float64() -> None:
    from regimescope.conservation import unit_squares

    model = seeded(AttentionNet).float()
    for pair in find_attention_pairs(model):
        exact, fast = unit_squares(pair, _weights(model)), unit_squares(pair, _weights(model), dtype=None)
        for role in ("outgoing", "incoming", "bias", "out_bias"):
            torch.testing.assert_close(getattr(fast, role), getattr(exact, role), rtol=1e-6, atol=0)


class Spy(nn.Module):
    """An identity parametrization counting its evaluations on the model's own Parameter (``live``): inside
    ``functional_call`` or on a copy of the module it is handed another tensor, or is another module."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        self.live += isinstance(original, nn.Parameter)
        return original


def _spied(model: nn.Module, tensors: dict[str, list[str]]) -> list[Spy]:
    spies = []
    for module_name, names in tensors.items():
        for name in names:
            spies.append(Spy())
            parametrize.register_parametrization(model.get_submodule(module_name), name, spies[-1])
            spies[-1].live = 0  # registering evaluates it once
    return spies


def _find_everything(model: nn.Module) -> None:
    find_pairs(model)
    find_layer_pairs(model)
    find_attention_pairs(model)
    conserved_quantities(model)


def test_no_pair_finder_computes_a_parametrized_attention_tensor_on_the_model() -> None:
    model = seeded(AttentionNet)
    spies = _spied(model, {"attn": ["in_proj_weight", "in_proj_bias"], "attn.out_proj": ["weight", "bias"],
                           "embed": ["weight", "bias"], "head": ["weight"]})
    separate = seeded(LinearAttention)
    spies += _spied(separate, {"q": ["weight", "bias"], "k": ["bias"], "v": ["bias"], "o": ["weight"]})

    _find_everything(model)
    _find_everything(separate)
    attention_pairs(separate, q="q", k="k", v="v", o="o", heads=2)

    assert [spy.live for spy in spies] == [0] * len(spies)


def test_spectral_norm_on_the_packed_projection_keeps_its_power_iteration_vectors() -> None:
    """Reading ``in_proj_weight`` would run ``spectral_norm``'s power iteration on the model (train mode)."""
    model = seeded(AttentionNet)
    parametrizations.spectral_norm(model.attn, "in_proj_weight")
    state = {k: v.clone() for k, v in model.state_dict().items()}

    _find_everything(model)
    qk, vo = find_attention_pairs(model)

    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert qk.out_weight == qk.in_weight == "attn.in_proj_weight" and qk.in_bias == "attn.in_proj_bias"
    assert not qk.has_balance and not vo.has_balance and Break.PARAMETRIZED in qk.breaks
