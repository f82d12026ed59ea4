"""Generic exact Jacobians of a parameter block, through ``torch.func``."""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from regimescope import batch
from regimescope.ntk.blocks import ParamBlock
from regimescope.ntk.model_call import ModelCall


def _flatten(jac: dict[str, torch.Tensor], names: tuple[str, ...], lead: int) -> torch.Tensor:
    first = jac[names[0]]
    shape = first.shape[:lead]
    return torch.cat([jac[name].reshape(*shape, -1) for name in names], dim=lead)


def per_sample_jacobian(call: ModelCall, block: ParamBlock, inputs: batch.Inputs) -> torch.Tensor:
    """Per-sample Jacobian ``J[i, o, p] = d f_o(x_i) / d theta_p`` of the block, one example at a time.

    ``vmap`` over examples of ``jacrev`` of the single-example function. Valid when examples are processed
    independently (eval mode).

    Returns:
        ``(n, k, P)`` with the block's parameters flattened in ``block.param_names`` order.
    """
    own = {name: call.params[name] for name in block.param_names}

    def single(params: dict[str, torch.Tensor], example: batch.Inputs) -> torch.Tensor:
        one = batch.map_tensors(example, lambda t: t.unsqueeze(0))
        return call(params, one)[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(own, inputs)
    return _flatten(jac, block.param_names, 2)


def batch_jacobian(call: ModelCall, block: ParamBlock, inputs: batch.Inputs) -> torch.Tensor:
    """Jacobian of the whole-batch function, ``J[i, o, p] = d f_o(x_i; X) / d theta_p``.

    Exact when examples interact (BatchNorm with batch statistics). Memory ``n k P``. Buffers enter as inputs
    of the transformed function, so train-mode statistics updates land on fresh copies.

    Returns:
        ``(n, k, P)``.
    """
    own = {name: call.params[name] for name in block.param_names}
    jac = jacrev(lambda params, buffers: call(params, inputs, buffers))(own, call.fresh_buffers())
    return _flatten(jac, block.param_names, 2)


def jacobian_kernel(ja: torch.Tensor, jb: torch.Tensor, full: bool) -> torch.Tensor:
    """Kernel from Jacobians ``(n1, k, P)`` and ``(n2, k, P)``.

    Trace: ``K[i, j] = sum_{o,p} J_a[i,o,p] J_b[j,o,p]``; full: ``K[i, j, o, q] = sum_p J_a[i,o,p] J_b[j,q,p]``.
    """
    if full:
        return torch.einsum("iop,jqp->ijoq", ja, jb)
    return torch.einsum("iop,jop->ij", ja, jb)
