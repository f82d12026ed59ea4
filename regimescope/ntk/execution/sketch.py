"""Seeded CountSketch of per-sample gradients: an unbiased low-dimensional estimate of their inner products.

Each parameter tensor of ``P`` scalars is projected to ``m`` dimensions by ``S x = fold(pi(s * x))``: random signs
``s``, a random permutation ``pi`` of the ``P`` coordinates (zero-padded to a multiple of ``m``), and a fold that
sums the coordinates falling on the same residue, so every bucket gets the same number of coordinates. Because
the signs are independent and of mean zero,

    E[<S x, S y>] = <x, y>,
    Var[<S x, S y>] <= (1/m) (|x|^2 |y|^2 + <x, y>^2),

so each kernel entry ``K_ij = sum_o <J_io, J_jo>`` is estimated without bias, with a relative standard deviation of
at most ``sqrt(2/m)`` on the diagonal; the errors of different outputs and parameter tensors are independent and
average out further (measured relative Frobenius errors: ``tests/ntk/test_sketch.py`` and the README's
performance section). Cost: ``O(P)`` per sketched row (a gather and a sum), memory
``3 P`` scalars per row being sketched; the kernel then costs ``O(m)`` per pair of rows instead of ``O(P)``.
"""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F


class CountSketch:
    """The sketch of one parameter tensor: ``(..., P) -> (..., m)``.

    Args:
        size: ``P``.
        dim: ``m``.
        seed: User seed.
        key: Name of the parameter, mixed into the seed so that parameters get independent sketches.
        dtype: Compute dtype.
        device: Compute device.
    """

    def __init__(self, size: int, dim: int, seed: int, key: str, dtype: torch.dtype, device: torch.device) -> None:
        self.size, self.dim = size, dim
        padded = -(-size // dim) * dim
        generator = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(key.encode())) % 2**63)
        self.signs = (2 * torch.randint(0, 2, (size,), generator=generator) - 1).to(dtype=dtype, device=device)
        self.permutation = torch.randperm(padded, generator=generator).to(device)
        self.padding = padded - size

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        """Sketch the last dimension of ``rows``."""
        signed = F.pad(rows * self.signs, (0, self.padding))
        mixed = signed.index_select(-1, self.permutation)
        return mixed.view(*rows.shape[:-1], -1, self.dim).sum(-2)
