"""The exact rule for ``nn.Embedding``: per-sample gradients and kernels from index coincidences.

With token ids ``v_{i,t}`` and output gradients ``g_{i,o,t}`` (``C = embedding_dim``), the per-sample gradient of
the table is ``dE_i[v] = sum_{t: v_{i,t} = v} g_{i,o,t}`` (an outer product of one-hot rows), so the block is

    K(i, j) = sum_o sum_{t,s} [v_{i,t} = v_{j,s}] <g_{i,o,t}, g_{j,o,s}>,

the Gram-Hadamard form with the input Gram replaced by index equality. Positions holding ``padding_idx`` get no
gradient and are left out. Not used (generic path instead) with ``max_norm`` (the forward renormalises the table
in place) or ``scale_grad_by_freq`` (the gradient depends on the batch's counts).
"""

from __future__ import annotations

import torch
from torch import nn

from regimescope.ntk.rules.base import GramRule

_PADDING = -1
"""Id recorded for positions that hold ``padding_idx``."""


class EmbeddingRule(GramRule):
    """``nn.Embedding`` without ``max_norm`` and ``scale_grad_by_freq``."""

    name = "embedding"
    parameters = ("weight",)

    def applies(self, module: nn.Module) -> bool:
        """Plain embedding forward, no renormalisation, no frequency scaling."""
        return (
            isinstance(module, nn.Embedding)
            and type(module).forward is nn.Embedding.forward
            and module.max_norm is None
            and not module.scale_grad_by_freq
        )

    def record(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Ids ``(n, T)``, padding positions as ``-1``."""
        ids = x.reshape(x.shape[0], -1)
        if module.padding_idx is not None:
            ids = torch.where(ids == module.padding_idx, torch.full_like(ids, _PADDING), ids)
        return ids.clone()

    def grad_tokens(self, module: nn.Module, g: torch.Tensor) -> torch.Tensor:
        """``(b, n, ..., C)`` -> ``(b, n, T, C)``."""
        return g.reshape(g.shape[0], g.shape[1], -1, g.shape[-1])

    def per_sample(self, module: nn.Module, local: str, record: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """``(k, n, V * C)``: the output gradients scattered to the rows of their ids (cost ``n k V C`` memory)."""
        k, n, t, c = grads.shape
        vocab = module.num_embeddings
        valid = record >= 0
        ids = torch.where(valid, record, torch.zeros_like(record))
        rows = (torch.arange(k * n, device=ids.device).view(k, n, 1) * vocab + ids.unsqueeze(0)).reshape(-1)
        source = (grads * valid.unsqueeze(0).unsqueeze(-1).to(grads.dtype)).reshape(-1, c)
        out = torch.zeros(k * n * vocab, c, dtype=grads.dtype, device=grads.device)
        out.index_add_(0, rows, source)
        return out.view(k, n, vocab * c)

    def input_gram(self, module: nn.Module, ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
        """``[v_{i,t} = v_{j,s}]`` (false at padding) as a boolean ``(n1 T1, n2 T2)`` matrix."""
        a, b = ra.reshape(-1, 1), rb.reshape(1, -1)
        return (a == b) & (a >= 0)

    def per_sample_flops(self, module: nn.Module, tokens: int, record_width: int, grad_width: int) -> int:
        """Zeroing and scattering into the ``V x C`` table."""
        return (module.num_embeddings + tokens) * grad_width


EMBEDDING_RULE = EmbeddingRule()
