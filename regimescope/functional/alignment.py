"""Centred kernel-target alignment (Cortes et al. 2012; Baratin et al. 2021)."""

from __future__ import annotations

import torch


def target_matrix(targets: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Targets as a float matrix ``Y`` of shape ``(n, c)``.

    Integer class labels ``(n,)`` become one-hot rows; float targets ``(n,)`` become a column; ``(n, ...)``
    float targets are flattened to ``(n, c)``.
    """
    if targets.dim() == 0:
        raise ValueError("`targets` must have a batch dimension; received a 0-dimensional tensor.")
    if not targets.is_floating_point() and not targets.is_complex():
        if targets.dim() != 1:
            raise ValueError(
                f"Integer targets must be class labels of shape (n,); received shape {tuple(targets.shape)}. "
                "Pass float targets for multi-output regression."
            )
        classes = int(targets.max().item()) + 1 if n_classes is None else n_classes
        return torch.nn.functional.one_hot(targets.long(), classes).double()
    return targets.reshape(targets.shape[0], -1).double()


def center(matrix: torch.Tensor) -> torch.Tensor:
    """``H M H`` with ``H = I - 11^T/n`` (double centring of a square matrix)."""
    centred = matrix - matrix.mean(0, keepdim=True)
    return centred - centred.mean(1, keepdim=True)


def kernel_alignment(kernel: torch.Tensor, targets: torch.Tensor, centered: bool = True) -> torch.Tensor:
    """Alignment of a kernel with the targets' Gram matrix.

    ``A = <K_c, Y_c Y_c^T>_F / (|K_c|_F |Y_c Y_c^T|_F)`` with ``K_c = H K H`` and ``Y_c = H Y``
    (``centered=False`` skips the centring). In ``[-1, 1]``; rises as the kernel learns the task (rich training,
    "silent alignment" from small initialisation) and stays flat in lazy training.

    Args:
        kernel: ``(n, n)`` trace kernel.
        targets: ``(n,)`` class labels (one-hot encoded) or ``(n, c)`` float targets.
        centered: Centre both matrices first (recommended: uncentred alignment is dominated by the mean).

    Returns:
        A 0-d float64 tensor; ``0`` when either matrix is zero.
    """
    if kernel.dim() != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"`kernel` must be a square (n, n) trace kernel; received shape {tuple(kernel.shape)}.")
    y = target_matrix(targets)
    if y.shape[0] != kernel.shape[0]:
        raise ValueError(f"`targets` has {y.shape[0]} rows but the kernel is {kernel.shape[0]} x {kernel.shape[0]}.")
    k = kernel.double()
    yy = y @ y.T
    if centered:
        k, yy = center(k), center(yy)
    denom = k.norm() * yy.norm()
    if denom == 0:
        return torch.zeros((), dtype=torch.float64)
    return (k * yy).sum() / denom
