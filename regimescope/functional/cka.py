"""Linear centred kernel alignment of two representations (Kornblith et al. 2019)."""

from __future__ import annotations

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA ``|Psi^T Phi|_F^2 / (|Phi^T Phi|_F |Psi^T Psi|_F)`` of column-centred ``Phi = x``, ``Psi = y``.

    Invariant to orthogonal transformations and isotropic scaling of either representation; ``1`` for
    representations equal up to those, ``0`` for unrelated ones. Computed through the ``n x n`` Gram matrices
    when the feature dimensions exceed ``n``.

    Args:
        x: ``(n, d1)`` representation (trailing dimensions are flattened).
        y: ``(n, d2)`` representation of the same ``n`` examples.

    Returns:
        A 0-d float64 tensor in ``[0, 1]``; ``0`` when either representation is constant.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Representations must describe the same examples; received {x.shape[0]} and {y.shape[0]} rows.")
    phi = x.reshape(x.shape[0], -1).double()
    psi = y.reshape(y.shape[0], -1).double()
    phi = phi - phi.mean(0, keepdim=True)
    psi = psi - psi.mean(0, keepdim=True)
    if max(phi.shape[1], psi.shape[1]) > phi.shape[0]:
        gx, gy = phi @ phi.T, psi @ psi.T
        cross, nx, ny = (gx * gy).sum(), gx.norm(), gy.norm()
    else:
        cross, nx, ny = (psi.T @ phi).norm() ** 2, (phi.T @ phi).norm(), (psi.T @ psi).norm()
    if nx == 0 or ny == 0:
        return torch.zeros((), dtype=torch.float64)
    return cross / (nx * ny)
