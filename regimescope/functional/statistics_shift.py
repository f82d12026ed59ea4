"""How far apart two sets of per-channel normalisation statistics are."""

from __future__ import annotations

import torch


def statistics_shift(
    mean_a: torch.Tensor, var_a: torch.Tensor, mean_b: torch.Tensor, var_b: torch.Tensor
) -> torch.Tensor:
    """Mean over channels of the squared Hellinger distance between ``N(mean_a, var_a)`` and ``N(mean_b, var_b)``.

    Per channel ``c``,

        H_c^2 = 1 - sqrt(2 s_a s_b / (s_a^2 + s_b^2)) * exp(-(m_a - m_b)^2 / (4 (s_a^2 + s_b^2)))

    with ``m`` the means and ``s^2`` the variances. It is ``0`` for equal statistics and tends to ``1`` for
    statistics whose Gaussians do not overlap; it is symmetric, invariant to a common affine change of units, and
    finite whenever the variances are positive (pass them with the layer's ``eps`` added, as the layer divides
    by ``sqrt(var + eps)``).

    Args:
        mean_a: ``(C,)`` means of the first statistics.
        var_a: ``(C,)`` positive variances of the first statistics.
        mean_b: ``(C,)`` means of the second statistics.
        var_b: ``(C,)`` positive variances of the second statistics.

    Returns:
        A 0-d float64 tensor in ``[0, 1]``.

    Raises:
        ValueError: When the four tensors do not share one shape, or a variance is not positive.
    """
    shapes = {tuple(t.shape) for t in (mean_a, var_a, mean_b, var_b)}
    if len(shapes) != 1:
        raise ValueError(f"Means and variances must share one shape (C,); received shapes {sorted(shapes)}.")
    var_a, var_b = var_a.double(), var_b.double()
    if not (bool((var_a > 0).all()) and bool((var_b > 0).all())):
        raise ValueError("Variances must be positive; add the normalisation layer's eps to them.")
    total = var_a + var_b
    overlap = torch.sqrt(2 * torch.sqrt(var_a * var_b) / total)
    overlap = overlap * torch.exp(-((mean_a.double() - mean_b.double()) ** 2) / (4 * total))
    return (1 - overlap).mean()
