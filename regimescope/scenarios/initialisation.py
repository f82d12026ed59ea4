"""Initialisations of the demo student with a prescribed scale and per-unit layer balance.

For a two-layer ReLU network every hidden unit ``k`` has the balance (theory.md section 2)

    delta_k = a_k^2 - |w_k|^2 - b_k^2,

exactly conserved by gradient flow. GRQ's regimes are set by the scale of the initialisation and by ``delta``:
small scale with ``delta >= 0`` is rich (``delta > 0``, upstream: the small first layer moves fast and the kernel
changes through activation patterns), small scale with ``delta < 0`` (downstream) is lazy early, and a large
scale is lazy.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch

from regimescope.scenarios.student import TwoLayerReLU


class Parametrisation(enum.Enum):
    """Where the width and input dimension enter the student."""

    STANDARD = "standard"
    """``f(x) = sum_k a_k relu(w_k . x + b_k)``."""
    NTK = "ntk"
    """``f(x) = m^{-1/2} sum_k a_k relu(w_k . x / sqrt(d) + b_k)``: lazy as the width ``m`` grows."""


@dataclass(frozen=True)
class InitSpec:
    """How to initialise a :class:`TwoLayerReLU` student.

    Attributes:
        scale: ``tau > 0``. With a prescribed balance, every unit gets ``|a_k| * |(w_k, b_k)| = tau^2`` (so
            ``|a_k| = |(w_k, b_k)| = tau`` when balanced); with ``balance=None``, every parameter is drawn from
            ``N(0, tau^2)``.
        balance: Per-unit balance ``delta = a_k^2 - |w_k|^2 - b_k^2``, the same for every unit: ``> 0`` upstream,
            ``0`` balanced, ``< 0`` downstream. ``None`` draws i.i.d. Gaussian parameters instead (the usual NTK
            initialisation), whose ``delta_k`` are random.
        parametrisation: Standard or NTK multipliers (see :class:`Parametrisation`).
        mirrored: Pair unit ``k`` with unit ``k + m/2``: equal incoming weights, opposite outgoing weights, so
            the initial function is exactly zero (Chizat et al.'s symmetrised start) and every run faces the same
            task whatever its scale. Requires an even width; ``delta_k`` is the same within a pair.
    """

    scale: float
    balance: float | None = 0.0
    parametrisation: Parametrisation = Parametrisation.STANDARD
    mirrored: bool = True

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: If ``scale`` is not a positive finite number or ``balance`` is not finite.
        """
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"`scale` must be a positive finite number, got {self.scale}.")
        if self.balance is not None and not math.isfinite(self.balance):
            raise ValueError(f"`balance` must be a finite number or None, got {self.balance}.")


def unit_magnitudes(scale: float, balance: float) -> tuple[float, float]:
    """Norms of one unit's outgoing and incoming weights with product ``tau^2`` and balance ``delta``.

    Solves ``|a|^2 - r^2 = delta`` and ``|a| r = tau^2`` for ``r = |(w, b)|`` (L2R's lambda-balanced construction
    applied per unit):

        |a|^2 = (delta + sqrt(delta^2 + 4 tau^4)) / 2,    r^2 = (-delta + sqrt(delta^2 + 4 tau^4)) / 2,

    evaluating the smaller of the two as ``2 tau^4 / (|delta| + sqrt(delta^2 + 4 tau^4))`` to avoid cancellation.

    Args:
        scale: ``tau > 0``.
        balance: ``delta``.

    Returns:
        ``(|a|, r)``.
    """
    root = math.sqrt(balance**2 + 4 * scale**4)
    large = (abs(balance) + root) / 2
    small = 2 * scale**4 / (abs(balance) + root)
    out_sq, in_sq = (large, small) if balance >= 0 else (small, large)
    return math.sqrt(out_sq), math.sqrt(in_sq)


def _balanced_parameters(
    scale: float, balance: float, units: int, fan_in: int, generator: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random directions and signs with magnitudes from :func:`unit_magnitudes`.

    Returns ``(a, [w, b])`` with shapes ``(units,)`` and ``(units, fan_in)``.
    """
    out_norm, in_norm = unit_magnitudes(scale, balance)
    directions = torch.randn(units, fan_in, generator=generator, dtype=dtype)
    incoming = directions / directions.norm(dim=1, keepdim=True) * in_norm
    signs = torch.randint(0, 2, (units,), generator=generator).to(dtype) * 2 - 1
    return signs * out_norm, incoming


def _gaussian_parameters(
    scale: float, units: int, fan_in: int, generator: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every parameter i.i.d. ``N(0, tau^2)``.

    Returns ``(a, [w, b])`` with shapes ``(units,)`` and ``(units, fan_in)``.
    """
    incoming = torch.randn(units, fan_in, generator=generator, dtype=dtype) * scale
    outgoing = torch.randn(units, generator=generator, dtype=dtype) * scale
    return outgoing, incoming


def make_student(
    init: InitSpec,
    d: int,
    width: int,
    seed: int,
    *,
    bias: bool = True,
    dtype: torch.dtype = torch.float64,
) -> TwoLayerReLU:
    """Build a two-layer ReLU student initialised as ``init`` says.

    With ``init.balance = delta`` each unit ``k`` gets a direction ``u_k`` uniform on the unit sphere of
    ``(w_k, b_k)``, a random sign ``s_k``, and magnitudes from :func:`unit_magnitudes`:

        (w_k, b_k) = r u_k,    a_k = s_k |a|,    so    a_k^2 - |w_k|^2 - b_k^2 = delta  (to rounding).

    The global random state is left untouched; the same arguments give the same weights.

    Args:
        init: Scale, balance, parametrisation and mirroring.
        d: Input dimension.
        width: Number of hidden units ``m`` (even when ``init.mirrored``).
        seed: Seed of the weights.
        bias: Whether hidden units have biases (they enter ``delta_k``).
        dtype: Floating dtype of the parameters.

    Returns:
        The initialised student (in train mode).

    Raises:
        ValueError: If ``d`` or ``width`` is not positive, or ``width`` is odd with ``init.mirrored``.
    """
    if d < 1:
        raise ValueError(f"`d` must be a positive integer, got {d}.")
    if width < 1:
        raise ValueError(f"`width` must be a positive integer, got {width}.")
    if init.mirrored and width % 2:
        raise ValueError(
            f"A mirrored initialisation pairs hidden units, so `width` must be even, got {width}; "
            "pass an even width or `InitSpec(..., mirrored=False)`."
        )
    ntk = init.parametrisation is Parametrisation.NTK
    with torch.random.fork_rng(devices=[]):  # the layers' default init, overwritten below, draws globally
        model = TwoLayerReLU(
            d,
            width,
            bias=bias,
            input_scale=d**-0.5 if ntk else 1.0,
            output_scale=width**-0.5 if ntk else 1.0,
            dtype=dtype,
        )
    units = width // 2 if init.mirrored else width
    generator = torch.Generator().manual_seed(seed)
    if init.balance is None:
        outgoing, incoming = _gaussian_parameters(init.scale, units, d + int(bias), generator, dtype)
    else:
        outgoing, incoming = _balanced_parameters(init.scale, init.balance, units, d + int(bias), generator, dtype)
    if init.mirrored:
        outgoing = torch.cat([outgoing, -outgoing])
        incoming = torch.cat([incoming, incoming])
    with torch.no_grad():
        model.hidden.weight.copy_(incoming[:, :d])
        if bias:
            model.hidden.bias.copy_(incoming[:, d])
        model.readout.weight.copy_(outgoing[None])
    return model
