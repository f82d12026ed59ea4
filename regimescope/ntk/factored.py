"""The factored rule for linear and convolution layers: NTK blocks from layer inputs and output gradients.

For a layer ``z_t = W a_t + b`` applied at positions ``t`` (tokens of a sequence, patches of a convolution), the
per-sample gradient of output ``o`` is ``dW = sum_t g_{o,t} a_t^T`` and ``db = sum_t g_{o,t}`` with
``g_{o,t} = df_o / dz_t``. The weight block of the trace kernel is therefore

    K_W(x_i, x_j) = sum_o sum_{t,s} <g_{io,t}, g_{jo,s}> <a_{i,t}, a_{j,s}>,

a Hadamard product of two small Gram matrices when there is one position (``T = 1``), with no per-sample
gradient formed. With many positions the per-sample gradients ``(n, k, P)`` can be cheaper; :func:`block_kernel`
picks by cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from regimescope.ntk.jacobian import jacobian_kernel


@dataclass
class LayerFactors:
    """Inputs and output gradients of one layer on a batch, in token form.

    Attributes:
        tokens: ``(n, T, D)`` layer inputs (patches for convolutions), one row per position.
        grads: ``(k, n, T, C)`` gradients of each output ``o`` with respect to the layer outputs.
        has_weight: Whether the weight is a trainable part of the block.
        has_bias: Whether the bias is.
    """

    tokens: torch.Tensor
    grads: torch.Tensor
    has_weight: bool
    has_bias: bool


def input_tokens(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer input as ``(n, T, D)`` rows whose outer products with output gradients give ``dW``."""
    n = x.shape[0]
    if isinstance(module, nn.Linear):
        return x.reshape(n, -1, x.shape[-1])
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(2)
        kernel, dilation, padding, stride = (
            (1, module.kernel_size[0]),
            (1, module.dilation[0]),
            (0, module.padding[0]),
            (1, module.stride[0]),
        )
    else:
        kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
    patches = F.unfold(x, kernel_size=kernel, dilation=dilation, padding=padding, stride=stride)
    return patches.transpose(1, 2)


def output_tokens(module: nn.Module, g: torch.Tensor) -> torch.Tensor:
    """The gradient with respect to the layer output as ``(n, T, C)``, positions aligned with :func:`input_tokens`."""
    n = g.shape[0]
    if isinstance(module, nn.Linear):
        return g.reshape(n, -1, g.shape[-1])
    return g.reshape(n, g.shape[1], -1).transpose(1, 2)


def _per_sample(f: LayerFactors) -> torch.Tensor:
    """Per-sample gradients ``(n, k, P)`` of the block (weight flattened, then bias)."""
    parts = []
    if f.has_weight:
        w = torch.einsum("oitc,itd->iocd", f.grads, f.tokens)
        parts.append(w.reshape(w.shape[0], w.shape[1], -1))
    if f.has_bias:
        parts.append(f.grads.sum(2).transpose(0, 1))
    return torch.cat(parts, dim=2)


def gram_cost(a: LayerFactors, b: LayerFactors, full: bool) -> int:
    """Multiply-adds of the Gram-Hadamard form."""
    k, n1, t1, c = a.grads.shape
    n2, t2 = b.grads.shape[1], b.grads.shape[2]
    pairs = k * k if full else k
    return n1 * t1 * n2 * t2 * (a.tokens.shape[2] + pairs * c)


def per_sample_cost(a: LayerFactors, b: LayerFactors, full: bool) -> int:
    """Multiply-adds of forming per-sample gradients and their Gram."""
    k, n1, t1, c = a.grads.shape
    n2, t2 = b.grads.shape[1], b.grads.shape[2]
    d = a.tokens.shape[2]
    pairs = k * k if full else k
    return k * c * d * (n1 * t1 + n2 * t2) + n1 * n2 * pairs * c * d


def block_kernel(a: LayerFactors, b: LayerFactors, full: bool) -> torch.Tensor:
    """The block's kernel between the batches of ``a`` (rows) and ``b`` (columns).

    Returns:
        ``(n1, n2)`` for the trace kernel, ``(n1, n2, k, k)`` for the full one.
    """
    if a.has_weight and gram_cost(a, b, full) > per_sample_cost(a, b, full):
        return jacobian_kernel(_per_sample(a), _per_sample(b), full)
    kernel = None
    if a.has_weight:
        token_gram = torch.einsum("itd,jsd->itjs", a.tokens, b.tokens)
        if full:
            grad_gram = torch.einsum("oitc,pjsc->itjsop", a.grads, b.grads)
            kernel = torch.einsum("itjsop,itjs->ijop", grad_gram, token_gram)
        else:
            kernel = torch.zeros(a.grads.shape[1], b.grads.shape[1], dtype=a.grads.dtype, device=a.grads.device)
            for o in range(a.grads.shape[0]):
                grad_gram = torch.einsum("itc,jsc->itjs", a.grads[o], b.grads[o])
                kernel = kernel + (grad_gram * token_gram).sum((1, 3))
    if a.has_bias:
        ga, gb = a.grads.sum(2), b.grads.sum(2)
        bias = torch.einsum("oic,pjc->ijop", ga, gb) if full else torch.einsum("oic,ojc->ij", ga, gb)
        kernel = bias if kernel is None else kernel + bias
    return kernel


def select_rows(f: LayerFactors, rows: slice) -> LayerFactors:
    """The factors of the examples ``rows``."""
    return LayerFactors(f.tokens[rows], f.grads[:, rows], f.has_weight, f.has_bias)
