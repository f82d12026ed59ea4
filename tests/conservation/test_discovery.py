"""Finding layer pairs with torch.fx, and telling conserved pairs from the others."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regimescope.conservation import Break, LayerPair, find_layer_pairs, layer_pair, outgoing_weights
from tests.conservation._nets import (
    Branchy,
    FunctionalNet,
    NormMLP,
    ResidualCNN,
    ResidualMLP,
    conv_conv,
    conv_linear,
    deep_mlp,
    seeded,
    two_layer,
)


def _by_name(model: nn.Module) -> dict[str, LayerPair]:
    return {pair.name: pair for pair in find_layer_pairs(model)}


def _rescale_unit(model: nn.Module, pair: LayerPair, unit: int, factor: float) -> None:
    """Multiply unit ``unit``'s incoming weights and bias by ``factor`` and its outgoing weights by ``1 / factor``."""
    params = dict(model.named_parameters())
    out_weight = params[pair.out_weight]
    index = outgoing_weights(pair, torch.arange(out_weight.numel()).reshape(out_weight.shape))[unit]
    with torch.no_grad():
        params[pair.in_weight][unit] *= factor
        if pair.in_bias is not None:
            params[pair.in_bias][unit] *= factor
        out_weight.view(-1)[index] /= factor


class ChannelMean(nn.Module):
    """Conv-ReLU, global average pool written as ``x.mean((2, 3))``, then a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).mean((2, 3)))


class TokenFlatten(nn.Module):
    """A Linear on ``(n, 5, 4)`` tokens, ReLU, flattened to ``(n, 15)``: unit k is read by columns k, k+3, k+6, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 3)
        self.head = nn.Linear(15, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x.view(x.size(0), 5, 4)))
        return self.head(h.view(h.size(0), -1) * 0.5)


class Depthwise(nn.Module):
    """Conv - LeakyReLU - depthwise conv (groups=4) - ReLU - grouped conv (groups=2)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3)
        self.b = nn.Conv2d(4, 4, 3, groups=4)
        self.c = nn.Conv2d(4, 6, 1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(F.relu(self.b(F.leaky_relu(self.a(x), 0.2)))).flatten(1)


class PreNorm(nn.Module):
    """``fc2(relu(fc1(LayerNorm(x))))``: a LayerNorm with no layer before it still pairs with the layer after."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.norm(x))))


def batchnorm_mlp() -> nn.Sequential:
    """Linear - BatchNorm1d - ReLU - Linear: the BatchNorm acts on the Linear's units (last axis)."""
    return seeded(lambda: nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)))


def groupnorm_cnn() -> nn.Sequential:
    """Conv - GroupNorm - ReLU - AvgPool - Conv."""
    return seeded(
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 3, 2), nn.Flatten()
        )
    )


class EncoderNet(nn.Module):
    """``nn.TransformerEncoderLayer`` (an fx leaf) on ``(n, 5, 8)`` tokens, mean-pooled into a Linear head."""

    def __init__(self, activation: str = "relu") -> None:
        super().__init__()
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(x).mean(1))


CONSERVED = {
    "mlp": (lambda: two_layer(), (4,), ["0-2"]),
    "deep_mlp": (deep_mlp, (4,), ["0-2", "2-4", "4-6"]),
    "conv_maxpool_conv": (conv_conv, (2, 8, 8), ["0-3"]),
    "conv_pool_flatten_linear": (conv_linear, (2, 8, 8), ["0-4"]),
    "functional_relu": (lambda: seeded(FunctionalNet), (4,), ["fc1-fc2"]),
    "channel_mean": (lambda: seeded(ChannelMean), (2, 8, 8), ["conv-fc"]),
    "token_flatten": (lambda: seeded(TokenFlatten), (20,), ["embed-head"]),
    "grouped_conv": (lambda: seeded(Depthwise), (2, 8, 8), ["a-b", "b-c"]),
    "residual_block": (lambda: seeded(ResidualMLP), (4,), ["fc1-fc2"]),
    "resnet_basic_block": (lambda: seeded(ResidualCNN), (2, 8, 8), ["bn1-conv2"]),
    "layernorm_affine": (lambda: seeded(NormMLP), (4,), ["norm-fc2"]),
    "prenorm": (lambda: seeded(PreNorm), (4,), ["norm-fc1", "fc1-fc2"]),
    "batchnorm1d_affine": (batchnorm_mlp, (4,), ["1-3"]),
    "groupnorm_affine": (groupnorm_cnn, (2, 8, 8), ["1-4"]),
    "torch_encoder_layer": (lambda: seeded(EncoderNet).eval(), (5, 8), ["enc.linear1-enc.linear2"]),
}


@pytest.mark.parametrize(("builder", "shape", "names"), CONSERVED.values(), ids=CONSERVED.keys())
def test_conserved_pairs_are_found(builder, shape, names) -> None:
    pairs = _by_name(builder())
    conserved = sorted(name for name, pair in pairs.items() if pair.conserved)
    assert conserved == sorted(names)


@pytest.mark.parametrize(("builder", "shape", "names"), CONSERVED.values(), ids=CONSERVED.keys())
def test_every_conserved_pair_has_the_per_unit_rescaling_symmetry(builder, shape, names) -> None:
    """f is unchanged by (w_k, b_k, a_k) -> (c w_k, c b_k, a_k / c): the unit mapping is right."""
    model = builder()
    x = torch.randn((3, *shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        reference = model(x)
    for pair in find_layer_pairs(model):
        if not pair.conserved:
            continue
        for unit in range(pair.units):
            _rescale_unit(model, pair, unit, 3.0)
        with torch.no_grad():
            torch.testing.assert_close(model(x), reference, rtol=1e-12, atol=1e-12)


def test_rescaling_changes_the_function_through_tanh() -> None:
    model = seeded(FunctionalNet)
    x = torch.randn((3, 4), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pair = _by_name(model)["fc2-out"]
    with torch.no_grad():
        reference = model(x)
        for unit in range(pair.units):
            _rescale_unit(model, pair, unit, 3.0)
        assert (model(x) - reference).abs().max() > 1e-6


def test_flatten_columns_match_a_brute_force_per_channel_computation() -> None:
    model = conv_linear()
    pair = _by_name(model)["0-4"]
    assert (pair.in_kind, pair.out_kind, pair.units, pair.positions, pair.layout) == ("conv", "linear", 5, 9, "block")
    weight = model[4].weight.detach()
    rows = outgoing_weights(pair, weight)
    for channel in range(5):
        marker = torch.zeros(1, 5, 3, 3)
        marker[0, channel] = 1.0
        columns = nn.Flatten()(marker)[0].bool()
        torch.testing.assert_close(rows[channel], weight[:, columns].reshape(-1), rtol=0, atol=0)


def test_grouped_conv_rows_match_a_brute_force_per_channel_computation() -> None:
    model = seeded(Depthwise)
    pair = _by_name(model)["b-c"]
    weight = model.c.weight.detach()
    per_group_in, per_group_out = 4 // 2, 6 // 2
    rows = outgoing_weights(pair, weight)
    for channel in range(4):
        group, index = divmod(channel, per_group_in)
        filters = range(group * per_group_out, (group + 1) * per_group_out)
        expected = torch.cat([weight[f, index].reshape(-1) for f in filters])
        torch.testing.assert_close(rows[channel], expected, rtol=0, atol=0)


def test_deep_linear_net_has_a_conserved_matrix_and_relu_does_not() -> None:
    linear = _by_name(seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Linear(4, 2))))
    relu = _by_name(two_layer())
    assert linear["0-2"].matrix_conserved and linear["0-2"].conserved
    assert relu["0-2"].conserved and not relu["0-2"].matrix_conserved


@pytest.mark.parametrize(
    ("between", "label", "words"),
    [
        (nn.Tanh(), "Tanh ('1')", "not positively homogeneous"),
        (nn.GELU(), "GELU ('1')", "not positively homogeneous"),
        (nn.SiLU(), "SiLU ('1')", "not positively homogeneous"),
        (nn.Softmax(dim=1), "Softmax ('1')", "normalises across units"),
        (nn.BatchNorm1d(6), "BatchNorm1d ('1')", "scale-invariant"),
        (nn.LayerNorm(6), "LayerNorm ('1')", "scale-invariant"),
    ],
)
def test_non_homogeneous_op_between_gives_a_precise_reason(between: nn.Module, label: str, words: str) -> None:
    pair = _by_name(two_layer(between))["0-2"]
    assert not pair.conserved and not pair.matrix_conserved
    assert pair.reason.startswith(f"{label} between 0 and 2 ")
    assert words in pair.reason


def test_functional_tanh_is_seen() -> None:
    pairs = _by_name(seeded(FunctionalNet))
    assert pairs["fc1-fc2"].conserved
    assert not pairs["fc2-out"].conserved
    assert pairs["fc2-out"].reason.startswith("torch.tanh between fc2 and out")


class Residual(nn.Module):
    """``h = relu(a(x)); out(relu(b(h) + h))``: h feeds b and the addition."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        return self.out(F.relu(self.b(h) + h))


def test_residual_addition_and_fan_out_are_not_conserved() -> None:
    pairs = _by_name(Residual())
    assert set(pairs) == {"a-b", "a-out", "b-out"}
    assert not any(pair.conserved for pair in pairs.values())
    assert "the fan-out of 'relu' to 2 consumers ('b', 'add')" in pairs["a-b"].reason
    assert "operator.add between b and out mixes a second input" in pairs["b-out"].reason


class SkipChain(nn.Module):
    """A stem, then three blocks ``h = relu(h + block(h))`` joined by a skip chain, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for block in self.blocks:
            h = F.relu(h + block(h))
        return self.head(h)


def test_a_path_crosses_at_most_one_residual_addition() -> None:
    pairs = _by_name(SkipChain())
    assert set(pairs) == {"stem-blocks.0", "stem-blocks.1", "blocks.0-blocks.1", "blocks.1-blocks.2", "blocks.2-head"}
    assert not any(pair.conserved for pair in pairs.values())


class Shared(nn.Module):
    """The same hidden layer applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(F.relu(self.hidden(F.relu(self.inp(x)))))))


def test_weight_sharing_is_not_conserved() -> None:
    pairs = _by_name(Shared())
    assert set(pairs) == {"inp-hidden", "hidden-hidden", "hidden-out"}
    assert all("hidden is called more than once (weight sharing)" in pair.reason for pair in pairs.values())


class Concat(nn.Module):
    """Units go through ``torch.cat``, whose unit mapping is not followed."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        return self.b(torch.cat([h, h], dim=1))


def test_unknown_op_ends_the_path_without_a_pair() -> None:
    assert find_layer_pairs(Concat()) == []


def test_returned_features_count_as_a_consumer() -> None:
    class Returns(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = F.relu(self.a(x))
            return self.b(h), h

    pair = _by_name(Returns())["a-b"]
    assert not pair.conserved and "model output" in pair.reason


def test_frozen_layer_makes_the_pair_not_conserved() -> None:
    model = deep_mlp()
    model[2].requires_grad_(False)
    pairs = _by_name(model)
    assert not pairs["0-2"].conserved and not pairs["2-4"].conserved and pairs["4-6"].conserved
    assert "2.weight" in pairs["0-2"].reason and "requires_grad=False" in pairs["0-2"].reason
    assert "2.weight, 2.bias are frozen" in pairs["2-4"].reason


def test_wrapped_model_names_keep_the_wrapper_prefix() -> None:
    model = nn.DataParallel(two_layer())
    pairs = find_layer_pairs(model)
    assert [pair.name for pair in pairs] == ["module.0-module.2"]
    assert pairs[0].in_weight in dict(model.named_parameters())


def test_untraceable_model_raises_with_the_way_out() -> None:
    with pytest.raises(ValueError, match=r"Could not trace Branchy with torch.fx.*pairs=\[\.\.\.\]"):
        find_layer_pairs(Branchy())


def test_tracing_leaves_the_model_unchanged() -> None:
    model = deep_mlp()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    find_layer_pairs(model)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert modes == [m.training for m in model.modules()]


def test_norm_layer_moves_the_conserved_pair_to_its_affine() -> None:
    """theory.md 2: a norm after a linear map makes that map scale-invariant; (gamma, beta) pair with the next layer."""
    pairs = _by_name(seeded(ResidualCNN))
    assert not pairs["conv1-conv2"].conserved and pairs["conv1-conv2"].breaks == {Break.NORMALISATION}
    norm_pair = pairs["bn1-conv2"]
    assert (norm_pair.in_kind, norm_pair.out_kind, norm_pair.units, norm_pair.has_bias) == ("norm", "conv", 4, True)
    assert norm_pair.in_weight == "bn1.weight" and norm_pair.in_bias == "bn1.bias"
    assert norm_pair.conserved and not norm_pair.matrix_conserved and norm_pair.matrix_blocks is None


def test_residual_block_keeps_its_inner_units_and_breaks_the_rest() -> None:
    pairs = _by_name(seeded(ResidualMLP))
    assert pairs["fc1-fc2"].conserved and pairs["fc1-fc2"].matrix_blocks == 1
    assert pairs["stem-fc1"].breaks == {Break.FAN_OUT}
    assert pairs["fc2-head"].breaks == {Break.RESIDUAL}
    assert pairs["stem-head"].breaks == {Break.FAN_OUT, Break.RESIDUAL}


@pytest.mark.parametrize(
    ("between", "cause"),
    [
        (nn.Tanh(), Break.NON_HOMOGENEOUS),
        (nn.Softmax(dim=1), Break.MIXES_UNITS),
        (nn.LayerNorm(6), Break.NORMALISATION),
    ],
)
def test_break_causes_name_the_op_kind(between: nn.Module, cause: Break) -> None:
    assert _by_name(two_layer(between))["0-2"].breaks == {cause}


def test_frozen_and_shared_layers_are_causes() -> None:
    model = deep_mlp()
    model[2].requires_grad_(False)
    assert Break.FROZEN in _by_name(model)["0-2"].breaks
    assert _by_name(Shared())["inp-hidden"].breaks == {Break.SHARED}


def test_layer_pair_accepts_a_norm_as_incoming_layer_only() -> None:
    model = batchnorm_mlp()
    pair = layer_pair(model, "1", "3")
    assert (pair.in_kind, pair.units, pair.layout) == ("norm", 6, "block")
    with pytest.raises(ValueError, match=r"The outgoing layer '1' is a BatchNorm1d; expected one of \['Linear'"):
        layer_pair(model, "0", "1")


def test_a_gelu_encoder_layer_gives_its_feed_forward_pair_as_not_conserved() -> None:
    pair = _by_name(seeded(lambda: EncoderNet("gelu")))["enc.linear1-enc.linear2"]
    assert not pair.conserved and pair.breaks == {Break.NON_HOMOGENEOUS}
    assert pair.reason.startswith("the activation gelu between enc.linear1 and enc.linear2 is not positively")
