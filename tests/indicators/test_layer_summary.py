"""Per-block summaries: the grouping of module names, and each summary against the float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import Snapshot
from regimescope.indicators.base import Context
from regimescope.indicators.layer_summary import LayerSummary, group_layers
from regimescope.ntk.model.blocks import parameter_blocks
from tests import _models
from tests._dashboard_runs import narrow_resnet
from tests.reference import formulas as ref

RESNET_BLOCKS = ["conv1", "bn1", *(f"layer{s}.{b}" for s in range(1, 5) for b in range(2)), "fc"]


def test_a_resnet_is_grouped_by_residual_block() -> None:
    layers = [block.name for block in parameter_blocks(narrow_resnet())]
    assert len(layers) == 41
    groups = group_layers(layers)
    assert list(groups) == RESNET_BLOCKS
    assert groups["layer2.0"] == [
        "layer2.0.conv1", "layer2.0.bn1", "layer2.0.conv2", "layer2.0.bn2", "layer2.0.downsample.0",
        "layer2.0.downsample.1",
    ]
    assert sum(len(members) for members in groups.values()) == len(layers)


def test_a_gpt_is_grouped_by_transformer_layer() -> None:
    layers = ["transformer.wte", "transformer.wpe"]
    parts = ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2")
    layers += [f"transformer.h.{i}.{part}" for i in range(12) for part in parts]
    layers += ["transformer.ln_f", "lm_head"]
    groups = group_layers(layers)
    assert list(groups) == ["transformer.wte", "transformer.wpe", *(f"transformer.h.{i}" for i in range(12)),
                            "transformer.ln_f", "lm_head"]


def test_flat_or_small_models_get_no_summary() -> None:
    assert group_layers(["0", "2", "4"]) == {}
    context = Context(model=_models.mlp(), probe=rs.Probe(torch.zeros(2, 5)))
    indicator = LayerSummary()
    indicator.setup(context)
    assert not indicator.applicable(context)


def _snapshot(step: int, model: nn.Module, seed: int) -> Snapshot:
    """Random PSD per-layer kernels and the model's weights scaled by a seeded factor per parameter."""
    layers = [block.name for block in parameter_blocks(model)]
    kernels = {layer: torch.from_numpy(ref.random_psd(6, 2, 100 * seed + i)).float() for i, layer in enumerate(layers)}
    generator = torch.Generator().manual_seed(seed)
    weights = {
        name: p.detach() * (1 + seed * torch.rand((), generator=generator)) for name, p in model.named_parameters()
    }
    return Snapshot(step=step, layer_kernels=kernels, weights=weights)


def test_summaries_match_the_formulas_on_the_blocks() -> None:
    model = narrow_resnet()
    context = Context(model=model, probe=rs.Probe(torch.zeros(6, 3, 8, 8)))
    indicator = LayerSummary()
    indicator.setup(context)
    assert indicator.applicable(context)
    init, now = _snapshot(0, model, 0), _snapshot(5, model, 1)
    scalars = indicator.compute(now, init, context).scalars
    assert len(scalars) == 3 * len(RESNET_BLOCKS)
    total = sum(np.trace(ref.as_array(k)) for k in now.layer_kernels.values())
    params = {block.name: block.param_names for block in parameter_blocks(model)}
    for block, layers in group_layers(list(params)).items():
        k_0 = sum(ref.as_array(init.layer_kernels[layer]) for layer in layers)
        k_t = sum(ref.as_array(now.layer_kernels[layer]) for layer in layers)
        assert scalars[f"regimescope/blocks/kernel_distance_from_init/{block}"] == pytest.approx(
            ref.kernel_distance(k_0, k_t), rel=1e-5
        )
        assert scalars[f"regimescope/blocks/kernel_share/{block}"] == pytest.approx(np.trace(k_t) / total, rel=1e-6)
        names = [name for layer in layers for name in params[layer]]
        w_0 = np.concatenate([init.weights[n].double().numpy().ravel() for n in names])
        w_t = np.concatenate([now.weights[n].double().numpy().ravel() for n in names])
        change = np.linalg.norm(w_t - w_0) / np.linalg.norm(w_0)
        assert scalars[f"regimescope/blocks/weights_relative_change/{block}"] == pytest.approx(change, rel=1e-9)
    shares = [v for name, v in scalars.items() if "/kernel_share/" in name]
    assert sum(shares) == pytest.approx(1.0, abs=1e-9)


def test_a_block_that_starts_at_zero_has_no_relative_change() -> None:
    model = narrow_resnet()
    context = Context(model=model, probe=rs.Probe(torch.zeros(6, 3, 8, 8)))
    indicator = LayerSummary()
    indicator.setup(context)
    init, now = _snapshot(0, model, 0), _snapshot(5, model, 1)
    for name in ("fc.weight", "fc.bias"):  # a zero-initialised head, its own block
        init.weights[name] = torch.zeros_like(init.weights[name])
    scalars = indicator.compute(now, init, context).scalars
    assert "regimescope/blocks/weights_relative_change/fc" not in scalars
    assert all(np.isfinite(value) for value in scalars.values())
    assert "regimescope/blocks/weights_relative_change/layer4.1" in scalars
