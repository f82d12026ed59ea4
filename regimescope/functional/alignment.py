"""Centred kernel-target alignment (Cortes et al. 2012; Baratin et al. 2021), for class, matrix and token targets."""

from __future__ import annotations

import enum
from collections.abc import Sequence

import torch

IGNORE_INDEX = -100
"""Integer target value that marks an example or a position without a target (PyTorch's and Hugging Face's)."""


class TargetLayout(enum.Enum):
    """How targets map to the outputs; each layout defines the one-hot target matrix ``Y`` (one row per example).

    Integer targets are read through one-hot codes; :data:`IGNORE_INDEX` entries contribute a zero code.
    """

    CLASSES = "classes"
    """Integer class labels ``(n,)``: ``Y[i] = onehot(y_i)``."""
    MATRIX = "matrix"
    """A target matrix ``(n, ...)`` used as it is (flattened): float targets, or integer one-hot / multi-hot rows
    (``F.one_hot`` labels) of the outputs' shape."""
    TOKENS = "tokens"
    """Integer targets ``(n, T, ...)``, one class per output position (a language model's next tokens; outputs
    ``(n, T, ..., V)``): ``Y[i] = concat_t onehot(y_it)``, so ``(Y Y^T)[i, j]`` counts the positions where
    examples ``i`` and ``j`` have the same target, ignored positions left out."""


def target_layout(targets: torch.Tensor, output_shape: Sequence[int] | None = None) -> TargetLayout:
    """The layout of ``targets`` (see :class:`TargetLayout`), checked against the outputs when their shape is known.

    Float targets are a :attr:`~TargetLayout.MATRIX`. Integer targets ``(n,)`` are class labels. Integer targets
    ``(n, *s)``: with ``output_shape`` (the per-example output shape before flattening), a one-hot matrix when
    ``s`` is the output shape and one class per position when ``s`` is the output shape without its last
    (vocabulary) dimension; without it, a matrix when every entry is 0 or 1 (one-hot or multi-hot rows), tokens
    otherwise.

    Args:
        targets: ``(n, ...)`` targets.
        output_shape: Shape of one example's output (e.g. ``(T, V)`` for a language model), or ``None``.

    Raises:
        ValueError: For 0-dimensional targets, or integer targets that match the outputs in no layout (the
            message lists the shapes that would).
    """
    if targets.dim() == 0:
        raise ValueError("`targets` must have a batch dimension; received a 0-dimensional tensor.")
    if targets.is_floating_point() or targets.is_complex():
        return TargetLayout.MATRIX
    if targets.dim() == 1:
        return TargetLayout.CLASSES
    shape = tuple(targets.shape[1:])
    if output_shape is None:
        binary = bool(((targets == 0) | (targets == 1)).all())
        return TargetLayout.MATRIX if binary and targets.dim() == 2 else TargetLayout.TOKENS
    output_shape = tuple(output_shape)
    if shape == output_shape:
        return TargetLayout.MATRIX
    if len(output_shape) >= 2 and shape == output_shape[:-1]:
        return TargetLayout.TOKENS
    n = targets.shape[0]
    options = [f"({n},) class labels", f"{(n, *output_shape)} one-hot rows"]
    if len(output_shape) >= 2:
        options.append(f"{(n, *output_shape[:-1])} one class per output position")
    raise ValueError(
        f"Integer targets of shape {tuple(targets.shape)} match the model's outputs {(n, *output_shape)} in no "
        f"layout; integer targets must be {', '.join(options)}. For a language model whose logits are (n, T, V), "
        "pass the next token of every position, (n, T) (rs.Probe.next_token builds it); for regression, pass float "
        "targets."
    )


def _codes(targets: torch.Tensor, layout: TargetLayout) -> torch.Tensor:
    """Integer targets as ``(n, positions)`` codes, with :data:`IGNORE_INDEX` kept as the marker."""
    return targets.reshape(targets.shape[0], -1 if layout is TargetLayout.TOKENS else 1).long()


def target_matrix(targets: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Class-label or matrix targets as a float matrix ``Y`` of shape ``(n, c)``.

    Integer class labels ``(n,)`` become one-hot rows (:data:`IGNORE_INDEX` a zero row); float targets ``(n,)``
    become a column; ``(n, ...)`` float targets and integer one-hot rows are flattened to ``(n, c)``. Token targets
    have a ``Y`` with ``T V`` columns: use :func:`target_gram`, which never forms it.

    Raises:
        ValueError: For 0-dimensional targets, or integer targets that are neither labels nor 0/1 rows.
    """
    layout = target_layout(targets)
    if layout is TargetLayout.TOKENS:
        raise ValueError(
            f"Integer targets of shape {tuple(targets.shape)} are not class labels of shape (n,) nor one-hot rows of "
            "0 and 1; as one class per position (a language model's tokens) their target matrix is too large to "
            "form: use target_gram(targets). Pass float targets for multi-output regression."
        )
    if layout is TargetLayout.MATRIX:
        return targets.reshape(targets.shape[0], -1).double()
    labels = targets.long()
    kept = labels != IGNORE_INDEX
    classes = (int(labels[kept].max().item()) + 1 if bool(kept.any()) else 1) if n_classes is None else n_classes
    one_hot = torch.nn.functional.one_hot(torch.where(kept, labels, 0), classes).double()
    return one_hot * kept.unsqueeze(1)


def target_gram(targets: torch.Tensor, layout: TargetLayout | str | None = None) -> torch.Tensor:
    """The target Gram matrix ``Y Y^T``, ``(n, n)`` float64, of the one-hot target matrix of ``layout``.

    Class labels: ``G[i, j] = 1[y_i = y_j]``; tokens: ``G[i, j] = sum_t 1[y_it = y_jt]`` (the number of positions
    where the two examples' targets agree); :data:`IGNORE_INDEX` entries agree with nothing. Matrices: ``Y Y^T``.
    Token targets cost ``O(n^2 T)``, whatever the vocabulary size.

    Args:
        targets: ``(n, ...)`` targets.
        layout: Their :class:`TargetLayout` (or its value); ``None`` infers it from the targets alone
            (:func:`target_layout`).
    """
    layout = target_layout(targets) if layout is None else TargetLayout(layout)
    if layout is TargetLayout.MATRIX:
        y = targets.reshape(targets.shape[0], -1).double()
        return y @ y.T
    codes = _codes(targets, layout)
    same = (codes.unsqueeze(1) == codes.unsqueeze(0)) & (codes != IGNORE_INDEX).unsqueeze(1)
    return same.sum(2).double()


def center(matrix: torch.Tensor) -> torch.Tensor:
    """``H M H`` with ``H = I - 11^T/n`` (double centring of a square matrix)."""
    centred = matrix - matrix.mean(0, keepdim=True)
    return centred - centred.mean(1, keepdim=True)


def gram_alignment(a: torch.Tensor, b: torch.Tensor, centered: bool = True) -> torch.Tensor:
    """``<A_c, B_c>_F / (|A_c|_F |B_c|_F)`` of two ``(n, n)`` matrices, ``M_c = H M H`` (or ``M`` uncentred).

    Returns:
        A 0-d float64 tensor; ``0`` when either matrix is zero.
    """
    a, b = a.double(), b.double()
    if centered:
        a, b = center(a), center(b)
    denom = a.norm() * b.norm()
    if denom == 0:
        return torch.zeros((), dtype=torch.float64)
    return (a * b).sum() / denom


def kernel_alignment(
    kernel: torch.Tensor, targets: torch.Tensor, centered: bool = True, *, layout: TargetLayout | str | None = None
) -> torch.Tensor:
    """Alignment of a kernel with the targets' Gram matrix.

    ``A = <K_c, Y_c Y_c^T>_F / (|K_c|_F |Y_c Y_c^T|_F)`` with ``K_c = H K H`` and ``Y_c = H Y``
    (``centered=False`` skips the centring). In ``[-1, 1]``; rises as the kernel learns the task (rich training,
    "silent alignment" from small initialisation) and stays flat in lazy training.

    For a language model the trace kernel sums over positions and vocabulary, ``K[i, j] = sum_{t,v} <J_itv,
    J_jtv>``, and the matching target kernel is that of the one-hot next tokens, ``(Y Y^T)[i, j] = sum_t 1[y_it =
    y_jt]`` (:func:`target_gram`).

    Args:
        kernel: ``(n, n)`` trace kernel.
        targets: ``(n,)`` class labels, ``(n, c)`` float targets or one-hot rows, or ``(n, T)`` tokens.
        centered: Centre both matrices first (recommended: uncentred alignment is dominated by the mean).
        layout: How the targets map to the outputs (:class:`TargetLayout`); ``None`` infers it from the targets.

    Returns:
        A 0-d float64 tensor; ``0`` when either matrix is zero.
    """
    if kernel.dim() != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"`kernel` must be a square (n, n) trace kernel; received shape {tuple(kernel.shape)}.")
    if targets.dim() > 0 and targets.shape[0] != kernel.shape[0]:
        raise ValueError(
            f"`targets` has {targets.shape[0]} rows but the kernel is {kernel.shape[0]} x {kernel.shape[0]}."
        )
    return gram_alignment(kernel, target_gram(targets, layout), centered)
