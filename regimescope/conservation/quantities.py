"""The layer-balance conserved quantities of a layer pair, as pure functions of a weights mapping.

They read ``parameter name -> tensor`` mappings, so they work on ``dict(model.named_parameters())`` and on a
:class:`~regimescope.capture.snapshot.Snapshot`'s ``weights`` alike. Everything is computed in float64.

Per unit ``k`` (``a_k`` its outgoing weights, ``w_k``/``b_k`` its incoming weights and bias; theory.md section 2;
attention pairs also have an outgoing-side bias, see :mod:`regimescope.conservation.attention`):

- ``delta_k = |a_k|^2 / eta_out - (|w_k|^2 / eta_w + b_k^2 / eta_b)``, conserved under gradient flow when only
  positively homogeneous ops lie between the layers; with equal rates the plain ``|a_k|^2 - |w_k|^2 - b_k^2``.
  ``> 0`` upstream (the earlier layer is small and learns fast: rich), ``0`` balanced, ``< 0`` downstream.
- ``s_k = |a_k|^2 / eta_out + |w_k|^2 / eta_w + b_k^2 / eta_b``, the unit's total (rate-weighted) squared scale.
- ``rho_k = delta_k / s_k`` in ``[-1, 1]``: ``+1`` fully upstream, ``0`` balanced, ``-1`` fully downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from regimescope.conservation.balance_pair import BalancePair
from regimescope.conservation.learning_rates import PairRates


@dataclass(frozen=True)
class UnitSquares:
    """Squared norms per unit, float64, shape ``(units,)`` each.

    Attributes:
        outgoing: ``|a_k|^2``.
        incoming: ``|w_k|^2``.
        bias: ``b_k^2`` (zeros when the incoming layer has no bias).
        out_bias: Squared outgoing-side bias (the query bias of an attention ``qk`` pair); zeros for layer pairs.
    """

    outgoing: torch.Tensor
    incoming: torch.Tensor
    bias: torch.Tensor
    out_bias: torch.Tensor


def unit_squares(
    pair: BalancePair, weights: Mapping[str, torch.Tensor], dtype: torch.dtype | None = torch.float64
) -> UnitSquares:
    """Squared norms of each unit's outgoing weights, incoming weights and biases, summed in float64.

    Args:
        pair: The layer (or attention head) pair.
        weights: ``parameter name -> tensor`` (live parameters or a snapshot's detached copies).
        dtype: The dtype the entries are squared in: float64 (exact for float32 weights), or ``None`` for the
            weights' own (no float64 copy of the weights; each square rounded once; on ResNet-18's gradients the
            explained-drift pass took a quarter of the float64 time).

    Returns:
        The per-unit squared norms.

    Raises:
        ValueError: When a parameter is missing or its shape does not match the pair.
    """
    rows = pair.unit_rows(weights, dtype)
    squares = {role: rows[role].square().sum(1, dtype=torch.float64) for role in rows}
    zeros = torch.zeros_like(squares["in_weight"])
    return UnitSquares(
        outgoing=squares["out_weight"],
        incoming=squares["in_weight"],
        bias=squares.get("in_bias", zeros),
        out_bias=squares.get("out_bias", zeros),
    )


class PairSquares:
    """The :func:`unit_squares` of each pair in one weights mapping, each computed at most once.

    A measurement reads the same weights for the balance, its drift diagnosis and the drift's rounding floor; on
    ResNet-18, squaring them four times (the diagnosis also squared the step-0 weights again) took 0.08 to 0.29 s of
    a profiled measurement of about 1 s.

    Args:
        weights: ``parameter name -> tensor`` (a snapshot's detached copies); not copied, not to be changed.
    """

    def __init__(self, weights: Mapping[str, torch.Tensor]) -> None:
        self.weights = weights
        self._squares: dict[BalancePair, UnitSquares] = {}

    def holds(self, pair: BalancePair) -> bool:
        """Whether every parameter of ``pair`` is in the weights."""
        return all(name in self.weights for name in pair.parameter_names)

    def __call__(self, pair: BalancePair) -> UnitSquares:
        """``unit_squares(pair, weights)`` (float64), computed on the first call for ``pair``.

        Raises:
            ValueError: When a parameter is missing or its shape does not match the pair.
        """
        squares = self._squares.get(pair)
        if squares is None:
            squares = self._squares[pair] = unit_squares(pair, self.weights)
        return squares


def weighted_squares(squares: UnitSquares, rates: PairRates | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|a_k|^2 / eta_out, |w_k|^2 / eta_w + b_k^2 / eta_b)``, or the plain norms when ``rates`` is ``None``."""
    if rates is None:
        return squares.outgoing + squares.out_bias, squares.incoming + squares.bias
    incoming = squares.incoming / rates.in_weight
    if rates.in_bias is not None:
        incoming = incoming + squares.bias / rates.in_bias
    outgoing = squares.outgoing / rates.out_weight
    if rates.out_bias is not None:
        outgoing = outgoing + squares.out_bias / rates.out_bias
    return outgoing, incoming


def unit_deltas(squares: UnitSquares, rates: PairRates | None = None) -> torch.Tensor:
    """Per-unit conserved quantity ``delta_k = |a_k|^2 / eta_out - (|w_k|^2 / eta_w + b_k^2 / eta_b)``.

    With ``rates=None`` (equal rates) the plain ``|a_k|^2 - |w_k|^2 - b_k^2``. Positive upstream (rich-prone),
    zero balanced, negative downstream (lazy-prone). Under gradient descent it changes per step by exactly
    ``eta_out |g_a|^2 - eta_w |g_w|^2 - eta_b g_b^2`` (plain form: ``eta^2 (|g_a|^2 - |g_w|^2 - g_b^2)``).

    Args:
        squares: The unit's squared norms (:func:`unit_squares`).
        rates: The pair's learning rates, or ``None`` for the plain form.

    Returns:
        ``(units,)`` float64.
    """
    outgoing, incoming = weighted_squares(squares, rates)
    return outgoing - incoming


def unit_scales(squares: UnitSquares, rates: PairRates | None = None) -> torch.Tensor:
    """Per-unit scale ``s_k = |a_k|^2 / eta_out + |w_k|^2 / eta_w + b_k^2 / eta_b`` (plain: the sum of squares).

    Returns:
        ``(units,)`` float64, ``>= 0``; ``|delta_k| <= s_k``.
    """
    outgoing, incoming = weighted_squares(squares, rates)
    return outgoing + incoming


def unit_balances(squares: UnitSquares, rates: PairRates | None = None) -> torch.Tensor:
    """Normalised balance ``rho_k = delta_k / s_k`` in ``[-1, 1]``.

    ``+1``: all of the unit's weight is outgoing (upstream, rich-prone); ``0``: balanced; ``-1``: all incoming
    (downstream, lazy-prone). Invariant to a common factor of the rates. A unit whose weights are all zero has
    ``rho_k = 0``.

    Returns:
        ``(units,)`` float64.
    """
    scales = unit_scales(squares, rates)
    deltas = unit_deltas(squares, rates)
    return torch.where(scales > 0, deltas / scales.clamp_min(torch.finfo(scales.dtype).tiny), 0.0)


def mean_balance(squares: UnitSquares, rates: PairRates | None = None) -> float | None:
    """Mean of ``rho_k`` over the units that have any weight (``s_k > 0``).

    A unit whose weights are all zero has no balance (``rho_k = 0 / 0``), so it is left out rather than counted as
    balanced; ``None`` when no unit has any weight (a pair initialised at zero on both sides).
    """
    scales = unit_scales(squares, rates)
    live = scales > 0
    if not bool(live.any()):
        return None
    return float(unit_balances(squares, rates)[live].mean())


def balance_matrix(
    pair: BalancePair, weights: Mapping[str, torch.Tensor], rates: PairRates | None = None
) -> torch.Tensor | None:
    """Matrix form ``Delta = W_out^T W_out / eta_out - W_in W_in^T / eta_w - b b^T / eta_b`` of a Linear pair.

    This is theory.md's ``Delta_l = eta_l W_{l+1}^T W_{l+1} - eta_{l+1} W_l W_l^T`` (bias appended as an extra input
    column of ``W_l``) divided by the constant ``eta_in * eta_out``, so that its diagonal is ``delta_k`` and its
    trace the layer-norm form ``|W_out|_F^2 / eta_out - |W_in|_F^2 / eta_w - |b|^2 / eta_b``. With equal rates
    (``rates=None``) it is the plain ``W_out^T W_out - W_in W_in^T - b b^T``; ``lambda I`` for L2R's
    lambda-balanced initialisation. The whole matrix is conserved in deep linear nets
    (:attr:`LayerPair.matrix_conserved`); through ReLU only its diagonal is. For attention heads the matrix is
    block diagonal, one ``(d_head, d_head)`` block per head (``W_Q W_Q^T - W_K W_K^T`` and
    ``W_O^T W_O - W_V W_V^T`` per head, biases as extra columns); the blocks between heads are not conserved and
    are left at zero.

    Args:
        pair: The layer (or attention head) pair.
        weights: ``parameter name -> tensor``.
        rates: The pair's learning rates, or ``None`` for the plain form.

    Returns:
        ``(units, units)`` float64, or ``None`` when the pair has no matrix form (``pair.matrix_blocks is None``:
        convolutions, flattened or norm pairs).
    """
    blocks = pair.matrix_blocks
    if blocks is None:
        return None
    rows = pair.unit_rows(weights)
    sign = {"out_weight": 1.0, "out_bias": 1.0, "in_weight": -1.0, "in_bias": -1.0}
    matrix = torch.zeros(pair.units, pair.units, dtype=torch.float64, device=rows["in_weight"].device)
    for role, row in rows.items():
        rate = getattr(rates, role) if rates is not None and getattr(rates, role) is not None else 1.0
        matrix = matrix + sign[role] * (row @ row.T) / rate
    if blocks > 1:
        size = pair.units // blocks
        mask = torch.block_diag(*[torch.ones(size, size, dtype=torch.float64)] * blocks).to(matrix.device)
        matrix = matrix * mask
    return matrix


def balance_drift(delta: torch.Tensor, delta_init: torch.Tensor, scale_init: torch.Tensor) -> float | None:
    """Relative drift ``|delta_t - delta_0|_2 / |s_0|_2`` of a pair's conserved quantities since initialisation.

    Normalised by the initial scales ``s_0`` rather than by ``delta_0``: a balanced initialisation has
    ``delta_0 = 0``, where a relative change of ``delta`` is undefined, while ``s_0`` (the pair's squared weight
    scale) is positive and bounds ``|delta_0|``. Near 0 when conservation holds (small-step GD/SGD, drift
    ``~ eta``); of order 1 when it is broken (Adam, weight decay, non-homogeneous activations).

    Args:
        delta: ``delta_k`` now, ``(units,)``.
        delta_init: ``delta_k`` at initialisation, same rates.
        scale_init: ``s_k`` at initialisation, same rates.

    Returns:
        The drift, or ``None`` when it is undefined: every unit had zero weights at initialisation (``s_0 = 0``), so
        there is no scale to measure a drift against (never ``inf``, which alert rules would read as divergence).
    """
    base = float(scale_init.norm())
    if base == 0:
        return None
    return float((delta - delta_init).norm()) / base
