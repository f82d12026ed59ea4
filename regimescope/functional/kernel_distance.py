"""How far a kernel moved: distance (scale-blind), relative change and norm ratio (scale-sensitive)."""

from __future__ import annotations

import math

import torch


def _check_pair(k_a: torch.Tensor, k_b: torch.Tensor) -> None:
    if k_a.shape != k_b.shape:
        raise ValueError(
            f"Kernels must have the same shape; received {tuple(k_a.shape)} and {tuple(k_b.shape)}. "
            "Compare kernels computed on the same probe."
        )


PSD_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-3}
"""Relative slack of the positive semi-definiteness checks of :func:`kernel_distance`, keyed by the kernels' dtype
(``1e-2`` for other dtypes): far above the rounding of kernels computed as ``J J^T``, far below the misuse they
catch."""


def _diagonal(k: torch.Tensor) -> torch.Tensor | None:
    """The diagonal of an ``(n, n)`` or ``(n, n, k, k)`` kernel (``K[i, i]`` or ``K[i, i, a, a]``), else ``None``."""
    if k.ndim == 2 and k.shape[0] == k.shape[1]:
        return k.diagonal()
    if k.ndim == 4 and k.shape[0] == k.shape[1] and k.shape[2] == k.shape[3]:
        return k.diagonal(dim1=0, dim2=1).diagonal(dim1=0, dim2=1)
    return None


def _not_psd(name: str, k: torch.Tensor, tolerance: float) -> str | None:
    """Why ``k`` cannot be PSD (a diagonal entry below ``-tolerance`` times the largest), or ``None``."""
    diagonal = _diagonal(k)
    if diagonal is None or diagonal.numel() == 0:
        return None
    diagonal = diagonal.double()
    lowest = diagonal.min()
    if lowest < -tolerance * diagonal.abs().max():
        return f"`{name}` has a negative diagonal entry ({float(lowest):.3g}), so it is not positive semi-definite"
    return None


def kernel_distance(k_a: torch.Tensor, k_b: torch.Tensor) -> torch.Tensor:
    """Kernel distance ``S(A, B) = 1 - <A, B>_F / (|A|_F |B|_F)`` (Fort et al. 2020).

    In ``[0, 1]`` for positive semi-definite (PSD) kernels, as every NTK ``K = J J^T`` is: then ``<A, B>_F =
    tr(A B) >= 0``. ``0`` when ``B = cA`` (``c > 0``), ``1`` when their ranges are orthogonal. Blind to scale, and
    quadratic in a small change: ``S ~ |dK_perp|^2 / (2 |K|^2)``. Near 0 through a lazy run; approaches 1 when the
    kernel rotates (rich learning).

    For matrices that are not PSD the formula reaches up to 2 (``S(A, -A) = 2``) and no longer measures a kernel's
    rotation, so such input is refused, by two cheap checks that PSD kernels always pass (up to
    :data:`PSD_TOLERANCE`): no negative diagonal entry in an ``(n, n)`` or ``(n, n, k, k)`` kernel (``O(n k)``), and
    no negative inner product ``<A, B>_F`` (``S > 1``). They are necessary conditions, not a full PSD test (an
    eigendecomposition would cost ``O(n^3)``): a non-PSD matrix with a positive diagonal can pass them, and then
    its value is clamped to ``[0, 1]``.

    Returns:
        A 0-d float64 tensor in ``[0, 1]``; ``0`` when either kernel is zero (no direction to compare).

    Raises:
        ValueError: When the shapes differ, or when an input cannot be PSD (the message names it).
    """
    _check_pair(k_a, k_b)
    tolerance = max(PSD_TOLERANCE.get(k_a.dtype, 1e-2), PSD_TOLERANCE.get(k_b.dtype, 1e-2))
    problem = _not_psd("k_a", k_a, tolerance) or _not_psd("k_b", k_b, tolerance)
    a, b = k_a.reshape(-1).double(), k_b.reshape(-1).double()
    denom = a.norm() * b.norm()
    if problem is None and denom > 0 and (a @ b) < -tolerance * denom:
        value = float(1 - (a @ b) / denom)
        problem = f"`<k_a, k_b>_F` is negative (S = {value:.3g} > 1), impossible for two PSD kernels"
    if problem is not None:
        raise ValueError(
            f"kernel_distance expects positive semi-definite kernels (S is in [0, 1] only for them); {problem}. "
            "Pass kernels such as rs.empirical_ntk(...) returns (K = J J^T), not their differences or negatives."
        )
    if denom == 0:
        return torch.zeros((), dtype=torch.float64)
    return (1 - (a @ b) / denom).clamp(0.0, 1.0)


def relative_change(k_t: torch.Tensor, k_0: torch.Tensor) -> torch.Tensor:
    """Relative change ``|K_t - K_0|_F / |K_0|_F``.

    First order in the change and sensitive to scale: from small initialisation rich learning grows the kernel
    by orders of magnitude (values >> 1), while lazy training keeps it near 0.
    """
    _check_pair(k_t, k_0)
    base = k_0.double().norm()
    if base == 0:
        return torch.tensor(math.inf if k_t.double().norm() > 0 else 0.0, dtype=torch.float64)
    return (k_t.double() - k_0.double()).norm() / base


def norm_ratio(k_t: torch.Tensor, k_0: torch.Tensor) -> torch.Tensor:
    """Norm ratio ``|K_t|_F / |K_0|_F``: the kernel's growth (>1) or shrinkage (<1) since the reference."""
    _check_pair(k_t, k_0)
    base = k_0.double().norm()
    if base == 0:
        return torch.tensor(math.inf if k_t.double().norm() > 0 else 1.0, dtype=torch.float64)
    return k_t.double().norm() / base


def kernel_angle(k_a: torch.Tensor, k_b: torch.Tensor) -> torch.Tensor:
    """Angle ``arccos(1 - S(A, B))`` between two kernels as vectors, in radians.

    First order in small changes, so its rate over steps is a well-defined velocity (``S / dt`` vanishes as
    ``dt -> 0``).
    """
    cosine = (1 - kernel_distance(k_a, k_b)).clamp(-1.0, 1.0)
    return torch.arccos(cosine)
