"""``conserved_quantities(model)``: every layer pair's balance quantities, in one call."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.conservation.attention import find_attention_pairs
from regimescope.conservation.balance_pair import BalancePair
from regimescope.conservation.discovery import find_layer_pairs
from regimescope.conservation.learning_rates import LearningRates, pair_rates, resolve_learning_rates
from regimescope.conservation.pairs import Break
from regimescope.conservation.quantities import balance_matrix, unit_balances, unit_deltas, unit_squares

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerBalance:
    """The conserved quantities of one layer pair (theory.md section 2).

    Attributes:
        delta: ``delta_k = |a_k|^2 / eta_out - (|w_k|^2 + b_k^2) / eta_in`` per unit, ``(units,)`` float64 (plain
            ``|a_k|^2 - |w_k|^2 - b_k^2`` with equal rates). ``> 0`` upstream, ``0`` balanced, ``< 0`` downstream.
        rho: ``rho_k = delta_k / s_k`` per unit in ``[-1, 1]``, ``s_k`` the matching sum of squares.
        matrix: ``Delta = W_out^T W_out / eta_out - W_in W_in^T / eta_in`` (bias as an extra input column) for a
            Linear-Linear pair, block diagonal per head for attention pairs, else ``None``; its diagonal is
            ``delta``.
        conserved: Whether ``delta`` is conserved under gradient flow for this pair.
        reason: Why it is not (empty when conserved).
        matrix_conserved: Whether the whole ``matrix`` is conserved (only linear ops between the layers).
        breaks: Why ``delta`` is not conserved, one cause per kind of op met (empty when conserved).
    """

    delta: torch.Tensor
    rho: torch.Tensor
    matrix: torch.Tensor | None
    conserved: bool
    reason: str
    matrix_conserved: bool
    breaks: frozenset[Break] = frozenset()


def find_pairs(model: nn.Module) -> list[BalancePair]:
    """Every pair with a balance: layer pairs found by ``torch.fx`` tracing, then attention heads.

    Raises:
        ValueError: When the model cannot be traced (the message says how to name pairs by hand).
    """
    return [*find_layer_pairs(model), *find_attention_pairs(model)]


def conserved_quantities(
    model: nn.Module,
    lrs: LearningRates = None,
    *,
    pairs: Sequence[BalancePair] | None = None,
    matrices: bool = True,
) -> dict[str, LayerBalance]:
    """Per-unit and matrix layer-balance conserved quantities of every layer pair of ``model``.

    ``delta_k = |a_k|^2 / eta_out - (|w_k|^2 + b_k^2) / eta_in`` is exactly constant under gradient flow when only
    positively homogeneous ops lie between the two layers; its sign says whether the pair is upstream (``> 0``,
    prone to rich feature learning), balanced (``0``) or downstream (``< 0``, prone to lazy training). Rates are
    used only when they differ within a pair; otherwise the plain ``|a_k|^2 - |w_k|^2 - b_k^2`` is reported.

    Args:
        model: The model (its current parameters are read, not changed).
        lrs: ``None`` or a number (equal rates), a dict ``parameter name -> lr``, or an optimizer whose param
            groups give per-parameter rates.
        pairs: The pairs to evaluate; by default :func:`find_pairs` (layer pairs, norm-affine pairs, attention
            heads). Pass them for models ``torch.fx`` cannot trace (build them with
            :func:`~regimescope.conservation.pairs.layer_pair` and
            :func:`~regimescope.conservation.attention.attention_pairs`).
        matrices: Whether to compute the ``(units, units)`` matrices of Linear-Linear pairs.

    Returns:
        ``pair name -> LayerBalance``, in pair order. Pairs with frozen parameters use the plain form; tied
        parameters are read under each of their names. Pairs without a balance (a parametrization such as
        ``spectral_norm`` computes one of their weights, :attr:`~regimescope.conservation.pairs.Break.PARAMETRIZED`)
        are left out; :func:`find_pairs` lists them with the reason.

    Raises:
        ValueError: When the model cannot be traced (and ``pairs`` is not given), or a trainable parameter of a
            pair has no rate in a dict/optimizer ``lrs``.
        TypeError: When ``lrs`` has an unsupported type.
    """
    rates = resolve_learning_rates(model, lrs)
    chosen = find_pairs(model) if pairs is None else list(pairs)
    params = dict(model.named_parameters(remove_duplicate=False))
    weights = {name: param.detach() for name, param in params.items()}
    result: dict[str, LayerBalance] = {}
    for pair in chosen:
        if not pair.has_balance:
            logger.debug("conserved_quantities leaves out %s: %s", pair.name, pair.reason)
            continue
        frozen = any(name in params and not params[name].requires_grad for name in pair.parameter_names)
        rate = None if frozen else pair_rates(pair, rates)
        squares = unit_squares(pair, weights)
        result[pair.name] = LayerBalance(
            delta=unit_deltas(squares, rate),
            rho=unit_balances(squares, rate),
            matrix=balance_matrix(pair, weights, rate) if matrices else None,
            conserved=pair.conserved,
            reason=pair.reason,
            matrix_conserved=pair.matrix_conserved,
            breaks=pair.breaks,
        )
    return result
