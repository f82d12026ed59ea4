"""Block kernels from the layer data of the collection passes: the Gram-Hadamard form and per-sample gradients."""

from __future__ import annotations

import torch
from torch import nn

from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.rules.base import GramRule, LayerData, LayerRule

LayerRows = dict[str, LayerData]
"""``module name -> LayerData`` for a chunk of examples and outputs."""


def block_per_sample(block: ParamBlock, modules: dict[str, tuple[nn.Module, LayerRule]], data: LayerRows
                     ) -> list[torch.Tensor]:
    """Per-sample gradients ``(q, c, P_p)`` of each parameter of the block, its rule gradients summed over its uses.

    A tied parameter (an embedding table reused as the output layer) gets the sum of its uses' gradients, so it
    is counted once with its cross terms.
    """
    parts = []
    for index in range(len(block.local_names)):
        total, owned = None, False
        for use in block.uses[index]:
            module, rule = modules[use.module_name]
            d = data[use.module_name]
            stored = use.local_name in d.per_sample
            part = d.per_sample[use.local_name] if stored else rule.per_sample(module, use.local_name, d.record,
                                                                               d.grads)
            if total is None:
                total, owned = part, not stored
            elif owned:
                total.add_(part)
            else:
                total, owned = total + part, True
            del part
        parts.append(total)
    return parts


def block_gram(block: ParamBlock, rule: GramRule, da: LayerData, db: LayerData, full: bool) -> torch.Tensor:
    """The Gram-Hadamard form of an exclusive block of a :class:`GramRule`.

    With input tokens ``a`` ``(c, T, D)`` and output gradients ``g`` ``(q, c, T, C)``,

        trace: K[i, j]       = sum_{t,s} sum_o <g_{o,i,t}, g_{o,j,s}> (<a_{i,t}, a_{j,s}> + [bias])
        full:  K[i, j, o, p] = sum_{t,s} <g_{o,i,t}, g_{p,j,s}> (<a_{i,t}, a_{j,s}> + [bias])

    (without a trainable weight the input Gram term is dropped). Cost ``ca cb Ta Tb (D + q C)`` (trace) or
    ``ca cb Ta Tb (D + q^2 C)`` (full); memory ``ca cb Ta Tb`` (times ``q^2`` for full).
    """
    module = block.module
    ga, gb = da.grads, db.grads
    qa, ca, ta, c = ga.shape
    qb, cb, tb, _ = gb.shape
    factor = None
    if "weight" in block.local_names:
        factor = rule.input_gram(module, da.record, db.record).to(ga.dtype)
        if "bias" in block.local_names:
            factor = factor + 1
    if full:
        gram = ga.reshape(-1, c) @ gb.reshape(-1, c).T
        gram = gram.view(qa, ca, ta, qb, cb, tb)
        if factor is not None:
            gram.mul_(factor.view(1, ca, ta, 1, cb, tb))
        if ta > 1 or tb > 1:
            gram = gram.sum((2, 5))
        return gram.view(qa, ca, qb, cb).permute(1, 3, 0, 2)
    gram = ga.new_zeros(ca * ta, cb * tb)
    for o in range(qa):
        gram.addmm_(ga[o].reshape(ca * ta, c), gb[o].reshape(cb * tb, c).T)
    if factor is not None:
        gram = gram.mul_(factor)
    if ta == 1 and tb == 1:
        return gram
    return gram.view(ca, ta, cb, tb).sum((1, 3))
