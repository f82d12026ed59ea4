"""Effective rank of a kernel (Roy & Vetterli 2007)."""

from __future__ import annotations

import torch


def effective_rank(kernel: torch.Tensor) -> torch.Tensor:
    """Effective rank ``exp(-sum_i p_i ln p_i)`` with ``p_i = sigma_i / sum_j sigma_j`` the normalised singular values.

    Between 1 (rank one) and ``n`` (flat spectrum). Rich learning from small initialisation drives it towards the
    task's rank; lazy training leaves it at its initial value.

    Returns:
        A 0-d float64 tensor; ``0`` for the zero matrix.
    """
    if kernel.dim() != 2:
        raise ValueError(f"`kernel` must be a matrix; received shape {tuple(kernel.shape)}.")
    sigma = torch.linalg.svdvals(kernel.double())
    total = sigma.sum()
    if total == 0:
        return torch.zeros((), dtype=torch.float64)
    p = sigma / total
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum())
