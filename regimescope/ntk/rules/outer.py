"""Shared math of the outer-product rules (linear and convolution layers): ``dW = sum_t g_t a_t^T``, ``db = sum_t g_t``.

Per-sample gradients cost ``T C D`` multiply-adds per example and output; the Gram of the input tokens
``(n1 T1) x (n2 T2) x D``.
"""

from __future__ import annotations

import torch
from torch import nn

from regimescope.ntk.rules.base import GramRule


class OuterProductRule(GramRule):
    """A rule whose weight gradient is ``sum_t g_t a_t^T`` over positions ``t`` and whose bias gradient is ``sum_t g_t``."""


    def per_sample(self, module: nn.Module, local: str, record: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """``(k, n, C*D)`` weight gradients ``g^T a`` per output and example, or ``(k, n, C)`` bias gradients.

        One batched product per output (broadcasting the inputs over outputs would copy them ``k`` times).
        """
        if local == "bias":
            return grads.sum(2)
        k, n, _, c = grads.shape
        out = grads.new_empty(k, n, c, record.shape[2])
        for o in range(k):
            torch.bmm(grads[o].transpose(-1, -2), record, out=out[o])
        return out.view(k, n, -1)

    def input_gram(self, module: nn.Module, ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
        """``<a_{i,t}, a_{j,s}>`` as an ``(n1 T1, n2 T2)`` matrix."""
        return ra.reshape(-1, ra.shape[-1]) @ rb.reshape(-1, rb.shape[-1]).T
