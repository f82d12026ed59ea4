"""Each per-layer exact rule against the float64 autograd reference, for every kind, on the issue's model list.

The models: an MLP, a CNN with BatchNorm and pooling, a ResNet basic block, a transformer block (embedding,
attention, LayerNorm), a tied input/output embedding, a model with frozen layers, ``(n, T, d)`` inputs, and small
models for the remaining layer options (GroupNorm, RMSNorm, padding_idx, Conv1d). Each case also checks, through
the plan, that the rule it is about really computed the block (so a silent fallback to the generic path fails).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regimescope.ntk import empirical_ntk, plan_ntk
from tests._models import build, inputs_for
from tests.ntk._isolated import run_fresh
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

RULE_IMPLEMENTATIONS = ("auto", "factored", "layer_per_sample")
RTOL = 1e-10
RMS_NORM = getattr(nn, "RMSNorm", nn.LayerNorm)
"""``nn.RMSNorm`` (torch 2.4 and later), else a LayerNorm in its place."""


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class BasicBlockNet(nn.Module):
    """Stem conv-BN-ReLU, a ResNet basic block with a projected shortcut, global pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.conv1 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.shortcut = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6))
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(h))))) + self.shortcut(h))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


class NormZoo(nn.Module):
    """Conv1d, GroupNorm, LayerNorm over two dims, RMSNorm and an embedding with ``padding_idx``."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(6, 4, padding_idx=0)
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.group = nn.GroupNorm(2, 6)
        self.layer = nn.LayerNorm([6, 5])
        self.rms = RMS_NORM(6)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).transpose(1, 2)
        h = self.layer(torch.tanh(self.group(self.conv(h))))
        return self.head(self.rms(h.transpose(1, 2))).mean(1)


def _randomised(model: nn.Module) -> nn.Module:
    """Random affine parameters and running statistics, so every norm parameter matters."""
    g = _seeded(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, RMS_NORM)):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=g))
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=g))
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape, generator=g))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=g))
    return model


def _basic_block() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _randomised(BasicBlockNet())


def _norm_zoo() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _randomised(NormZoo())


def _tokens_with_padding(n: int, seed: int) -> torch.Tensor:
    tokens = torch.randint(0, 6, (n, 5), generator=_seeded(seed))
    tokens[:, -1] = 0
    return tokens


CASES: dict[str, tuple[Any, Any, dict[str, str]]] = {
    # name: (builder, inputs(n, seed), {block: rule the plan must show})
    "mlp": (lambda: build("mlp"), lambda n, s: inputs_for("mlp", n, s), {"0": "linear", "4": "linear"}),
    "cnn_bn": (lambda: build("cnn_bn"), lambda n, s: inputs_for("cnn_bn", n, s),
               {"0": "conv", "1": "norm", "4": "conv", "8": "linear"}),
    "basic_block": (_basic_block, lambda n, s: torch.randn(n, 3, 6, 6, generator=_seeded(s)),
                    {"stem.0": "conv", "stem.1": "norm", "bn2": "norm", "shortcut.0": "conv", "head": "linear"}),
    "transformer_block": (lambda: build("transformer_block"), lambda n, s: inputs_for("transformer_block", n, s),
                          {"embed": "embedding", "norm1": "norm", "mlp.0": "linear", "head": "linear"}),
    "tied_lm": (lambda: build("tied_lm"), lambda n, s: inputs_for("tied_lm", n, s),
                {"embed": "embedding+linear", "mix": "linear"}),
    "frozen_mlp": (lambda: build("frozen_mlp"), lambda n, s: inputs_for("frozen_mlp", n, s), {"2": "linear"}),
    "sequence_inputs": (lambda: build("seq_mlp"), lambda n, s: inputs_for("seq_mlp", n, s),
                        {"layers.0": "linear", "layers.2": "linear"}),
    "norm_zoo": (_norm_zoo, _tokens_with_padding,
                 {"embed": "embedding", "conv": "conv", "group": "norm", "layer": "norm", "rms": "norm"}),
}


@pytest.mark.parametrize("implementation", RULE_IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", ["trace", "full"])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
@pytest.mark.parametrize("case", list(CASES))
def test_rule_matches_reference(case: str, cross: bool, kind: str, implementation: str) -> None:
    builder, inputs, _ = CASES[case]
    model, x1 = builder(), inputs(4, 1)
    x2 = inputs(3, 2) if cross else None

    kernel = empirical_ntk(model, x1, x2, kind=kind, per_layer=True, dtype=torch.float64,
                           implementation=implementation)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind=kind, per_layer=True), RTOL)


@pytest.mark.parametrize("implementation", RULE_IMPLEMENTATIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_rule_computes_its_blocks(case: str, implementation: str) -> None:
    """The blocks a rule covers are computed by that rule, not by the generic path."""
    builder, inputs, expected = CASES[case]
    plan = plan_ntk(builder(), inputs(4, 1), dtype=torch.float64, implementation=implementation)
    rules = {block.name: block.rule for block in plan.blocks}

    assert {name: rules[name] for name in expected} == expected


def test_attention_and_root_parameters_take_the_generic_path() -> None:
    plan = plan_ntk(build("transformer_block"), inputs_for("transformer_block", 4, 1))
    forms = {block.name: (block.rule, block.form) for block in plan.blocks}

    assert forms["attention"] == ("generic", "jacobian")
    assert forms["(root)"] == ("generic", "jacobian")


@pytest.mark.parametrize("name", ["seq_first_net", "query_projection_net", "functional_reuse_net",
                                  "centered_seq_first_net", "centered_functional_reuse_net"])
def test_layout_traps_fail_the_rule_check(name: str) -> None:
    """Layers whose leading dimension is not the batch, or whose weight is used outside their forward, are not
    computed by a rule."""
    model = build(name)
    plan = plan_ntk(model, inputs_for(name, 4, 1), dtype=torch.float64)
    trapped = {"seq_first_net": "fc", "query_projection_net": "project", "functional_reuse_net": "head"}
    trap = "inner." + trapped[name.removeprefix("centered_")] if name.startswith("centered_") else trapped[name]

    assert {block.name: block.rule for block in plan.blocks}[trap] == "generic"


def test_train_mode_uses_the_whole_batch_jacobian() -> None:
    plan = plan_ntk(build("cnn_bn"), inputs_for("cnn_bn", 4, 1), mode="train")

    assert {block.form for block in plan.blocks} == {"full_batch"}


def test_norm_rule_works_on_a_torch_without_rms_norm() -> None:
    """torch 2.3 (which the project allows) has no ``nn.RMSNorm``: the norm rule must import and still work."""
    code = (
        "import torch\n"
        "from torch import nn\n"
        "del nn.RMSNorm\n"
        "from regimescope.ntk import plan_ntk\n"
        "model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))\n"
        "print(sorted({b.rule for b in plan_ntk(model, torch.randn(3, 3)).blocks}))\n"
    )
    assert run_fresh(code).split() == ["['linear',", "'norm']"]
