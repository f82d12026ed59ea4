"""Gradients of chosen outputs with respect to chosen tensors: one batched backward pass per output chunk."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def _basis(outputs: torch.Tensor, chunk: range) -> torch.Tensor:
    """``(len(chunk), n, k)`` one-hot cotangents selecting output ``o`` of every example."""
    basis = outputs.new_zeros(len(chunk), *outputs.shape)
    basis[torch.arange(len(chunk)), :, torch.as_tensor(list(chunk))] = 1
    return basis


def output_gradients(outputs: torch.Tensor, targets: list[torch.Tensor], chunk: range) -> list[torch.Tensor]:
    """``d sum_i outputs[i, o] / d target`` for every ``o`` in ``chunk``, stacked: ``(len(chunk), *target.shape)``.

    One ``torch.autograd.grad(..., is_grads_batched=True)`` call (a vmapped backward pass) computes the whole
    chunk; when an operation of the model has no batching rule, the chunk falls back to one backward pass per
    output. The graph is retained for the next chunk. In eval mode examples are independent, so the rows of
    example ``i`` are the gradients of ``outputs[i, o]`` alone.

    Args:
        outputs: ``(n, k)``.
        targets: Tensors of the graph (layer outputs, parameters).
        chunk: Output indices.

    Returns:
        One stacked gradient per target (zeros where a target does not influence the outputs).
    """
    if not outputs.requires_grad:
        return [target.new_zeros(len(chunk), *target.shape) for target in targets]
    basis = _basis(outputs, chunk)
    try:
        grads = torch.autograd.grad(
            outputs, targets, basis, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
    except RuntimeError as error:
        logger.debug("Batched backward pass unavailable (%s); one pass per output instead.", error)
        per_output = [
            torch.autograd.grad(outputs, targets, basis[o], retain_graph=True, allow_unused=True)
            for o in range(len(chunk))
        ]
        grads = tuple(
            None if parts[0] is None else torch.stack(parts) for parts in zip(*per_output)
        )
    return [
        target.new_zeros(len(chunk), *target.shape) if g is None else g for target, g in zip(targets, grads)
    ]
