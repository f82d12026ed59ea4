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


def kernel_distance(k_a: torch.Tensor, k_b: torch.Tensor) -> torch.Tensor:
    """Kernel distance ``S(A, B) = 1 - <A, B>_F / (|A|_F |B|_F)`` (Fort et al. 2020).

    In ``[0, 1]`` for positive semi-definite kernels; ``0`` when ``B = cA``. Blind to scale, and quadratic in a
    small change: ``S ~ |dK_perp|^2 / (2 |K|^2)``. Near 0 through a lazy run; approaches 1 when the kernel rotates
    (rich learning).

    Returns:
        A 0-d tensor; ``0`` when either kernel is zero (no direction to compare).
    """
    _check_pair(k_a, k_b)
    a, b = k_a.reshape(-1).double(), k_b.reshape(-1).double()
    denom = a.norm() * b.norm()
    if denom == 0:
        return torch.zeros((), dtype=torch.float64)
    return (1 - (a @ b) / denom).clamp(min=0.0)


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
