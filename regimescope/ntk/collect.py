"""One forward and ``k`` backward passes that collect the factors of every factorable layer."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.ntk.blocks import ParamBlock
from regimescope.ntk.factored import LayerFactors, input_tokens, output_tokens
from regimescope.ntk.model_call import ModelCall

logger = logging.getLogger(__name__)

_CHECK_RTOL = 1e-3


class _Recorder:
    """Forward hooks recording each call's input tokens and (cloned) output of the watched layers."""

    def __init__(self, blocks: list[ParamBlock]) -> None:
        self.calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {b.name: [] for b in blocks}
        self._handles = [
            block.module.register_forward_hook(self._hook(block.name, block.module), with_kwargs=True)
            for block in blocks
        ]

    def _hook(self, name: str, module: nn.Module) -> Any:
        def hook(_: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            x = args[0] if args else next(iter(kwargs.values()))
            tokens = input_tokens(module, x.detach().clone())
            fresh = output.clone()
            self.calls[name].append((tokens, output))
            return fresh

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _check(
    block: ParamBlock,
    calls: list[tuple[torch.Tensor, torch.Tensor]],
    z_grads: list[torch.Tensor],
    param_grads: dict[str, torch.Tensor | None],
) -> bool:
    """Whether the layer's factors are exact, judged on the gradient of ``sum_o f_o(x_0)`` (example 0 alone).

    Two things must hold: the gradient reaches the layer outputs only in example 0's rows (the leading
    dimension of the layer really is the batch, e.g. not a sequence dimension), and the factored weight
    gradient ``sum_t g_0t a_0t^T`` equals autograd's parameter gradient (no use of the parameters outside the
    layer's own forward).
    """
    if any(g[1:].abs().max().item() > 0 for g in z_grads if g.shape[0] > 1):
        return False
    if "weight" not in block.local_names:
        return True
    tokens = torch.cat([t[:1] for t, _ in calls], dim=1)
    grads = torch.cat([output_tokens(block.module, g[:1]) for g in z_grads], dim=1)
    expected = torch.einsum("itc,itd->cd", grads, tokens)
    actual = param_grads[block.param_names[block.local_names.index("weight")]]
    actual = torch.zeros_like(expected) if actual is None else actual.reshape(expected.shape)
    scale = max(actual.norm().item(), expected.norm().item(), 1e-30)
    return (actual - expected).norm().item() <= _CHECK_RTOL * scale


def collect_factors(
    call: ModelCall, blocks: list[ParamBlock], inputs: batch.Inputs
) -> tuple[dict[str, LayerFactors], list[ParamBlock]]:
    """Run the model once on ``inputs`` and back-propagate each output to the watched layers' outputs.

    Samples must be independent (eval mode): the gradient of ``sum_i f_o(x_i)`` at sample ``i`` is then the
    gradient of ``f_o(x_i)`` alone.

    Args:
        call: The functional model.
        blocks: Factorable blocks.
        inputs: Prepared inputs of ``n`` examples.

    Returns:
        ``factors`` by layer name, and the blocks that cannot be factored after all (hook not called, batch
        dimension not leading inside the model, or parameters used outside the layer's own forward): these must be
        computed by a generic implementation.
    """
    n = batch.batch_size(inputs)
    leaves = {name: call.params[name].detach().requires_grad_() for b in blocks for name in b.param_names}
    recorder = _Recorder(blocks)
    try:
        outputs = call(leaves, inputs)
    finally:
        recorder.remove()
    usable = [
        b
        for b in blocks
        if recorder.calls[b.name] and all(t.shape[0] == n and z.shape[0] == n for t, z in recorder.calls[b.name])
    ]
    if not usable:
        return {}, list(blocks)
    zs = [z for b in usable for _, z in recorder.calls[b.name]]
    names = [name for b in usable for name in b.param_names]
    check = torch.autograd.grad(
        outputs[0].sum(), zs + [leaves[name] for name in names], retain_graph=True, allow_unused=True
    )
    check_z = [torch.zeros_like(z) if g is None else g for z, g in zip(zs, check[: len(zs)])]
    param_grads = dict(zip(names, check[len(zs) :]))
    k = outputs.shape[1]
    per_output = []
    for o in range(k):
        grads = torch.autograd.grad(outputs[:, o].sum(), zs, retain_graph=o < k - 1, allow_unused=True)
        per_output.append([torch.zeros_like(z) if g is None else g for z, g in zip(zs, grads)])
    factors: dict[str, LayerFactors] = {}
    fallback = [b for b in blocks if b not in usable]
    position = 0
    for block in usable:
        calls = recorder.calls[block.name]
        span = range(position, position + len(calls))
        position += len(calls)
        if not _check(block, calls, [check_z[c] for c in span], param_grads):
            logger.info("Layer %r cannot be factored (batch not leading, or parameters used elsewhere).", block.name)
            fallback.append(block)
            continue
        tokens = torch.cat([t for t, _ in calls], dim=1)
        grads = torch.stack([torch.cat([output_tokens(block.module, g[c]) for c in span], dim=1) for g in per_output])
        factors[block.name] = LayerFactors(
            tokens=tokens, grads=grads, has_weight="weight" in block.local_names, has_bias="bias" in block.local_names
        )
    return factors, fallback
