"""The layer-balance knob: move each hidden unit upstream or downstream at a fixed product of its weights.

For a hidden unit ``k`` between two layers, with incoming weights and bias ``(w_k, b_k)`` and outgoing weights
``a_k``, multiplying ``(w_k, b_k)`` by ``s`` and ``a_k`` by ``1/s`` leaves the function unchanged whenever only
positively homogeneous ops (ReLU, leaky ReLU, identity, pooling, ...) lie between the layers, and leaves the
product ``|a_k| |(w_k, b_k)|`` unchanged always. Only the balance moves (theory.md section 2):

    delta_k = |a_k|^2 - |w_k|^2 - b_k^2,    rho_k = delta_k / (|a_k|^2 + |w_k|^2 + b_k^2) in [-1, 1].

With the product ``p_k = |a_k| |(w_k, b_k)|`` fixed, a target ``rho`` gives ``|a_k|^2 = p_k e^u``,
``|(w_k, b_k)|^2 = p_k e^-u`` with ``u = artanh(rho)``; a target ``delta`` gives L2R's lambda-balanced magnitudes
``|a_k|^2 = (delta + sqrt(delta^2 + 4 p_k^2)) / 2`` (the per-unit form of theory.md section 4's construction, as
in :func:`regimescope.scenarios.unit_magnitudes`).

What theory says (Kunin et al. 2024, Dominé et al. 2025): gradient flow conserves ``delta_k``, so the balance chosen
at initialisation holds for the whole run. From a small initialisation, upstream units (``delta_k > 0``: the first
layer small) learn features fast through activation-pattern changes while their parameters barely move (rich);
balanced units are rich with kernel growth; downstream units (``delta_k < 0``: the readout small) fit on the first
layer's fixed random features first (lazy early, rich later when the targets are not reachable that way). A large
``|delta|`` relative to the task scale is lazy on both sides of linear networks (``S(K_0, K_inf) ~ lambda^-4``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from regimescope.conservation import LayerPair, find_layer_pairs, outgoing_weights
from regimescope.knobs.selection import working_copy

TOLERANCE = 1e-9
"""Largest relative error of a unit's balance after :func:`rebalance` (several pairs sharing a layer are iterated)."""
MAX_SWEEPS = 200
"""Most passes over the pairs when pairs share a layer (a deep MLP's hidden layers)."""


def _pairs(model: nn.Module, names: Sequence[str] | None) -> list[LayerPair]:
    try:
        found = find_layer_pairs(model)
    except ValueError as error:
        raise ValueError(f"rebalance could not find the model's layer pairs: {error}") from error
    by_name = {pair.name: pair for pair in found}
    if names is not None:
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(
                f"`pairs` names {missing}, which the model does not have; its pairs are {sorted(by_name)}."
            )
        found = [by_name[name] for name in names]
    broken = [f"{pair.name} ({pair.reason})" for pair in found if not pair.conserved]
    if broken:
        raise ValueError(
            "rebalance keeps the function only across positively homogeneous ops, and these pairs are not: "
            + "; ".join(broken)
            + ". Pass `pairs=` naming the conserved pairs to rebalance only those."
        )
    if not found:
        raise ValueError(
            "The model has no layer pair joined through hidden units (two Linear/Conv layers with a homogeneous "
            "activation between), so it has no layer balance to set."
        )
    return found


def _unit_norms(pair: LayerPair, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|a_k|^2, |w_k|^2 + b_k^2)`` in float64."""
    rows = pair.unit_rows(params)
    incoming = rows["in_weight"].square().sum(1)
    if "in_bias" in rows:
        incoming = incoming + rows["in_bias"].square().sum(1)
    return rows["out_weight"].square().sum(1), incoming


def _target_outgoing(product: torch.Tensor, rho: float | None, delta: float | None) -> torch.Tensor:
    """``|a_k|^2`` at product ``p_k`` for the target balance."""
    if rho is not None:
        return product * math.exp(math.atanh(rho))
    root = torch.sqrt(delta**2 + 4 * product.square())
    return (delta + root) / 2 if delta >= 0 else 2 * product.square() / (root - delta)


def _apply(pair: LayerPair, params: dict[str, torch.Tensor], rho: float | None, delta: float | None) -> float:
    """Rebalance ``pair`` in place; return the largest relative change of a unit's scale factor."""
    outgoing, incoming = _unit_norms(pair, params)
    product = torch.sqrt(outgoing * incoming)
    alive = product > 0  # a unit with a zero side has no rescaling orbit: left as it is
    target = _target_outgoing(product, rho, delta)
    scale_in = torch.ones_like(product)  # |(w_k, b_k)| becomes p_k / |a_k|: the factor sqrt(p_k^2 / (|a_k|^2 r_k^2))
    scale_in[alive] = torch.sqrt(product[alive].square() / (target[alive] * incoming[alive]))
    out = params[pair.out_weight]
    index = outgoing_weights(pair, torch.arange(out.numel(), dtype=torch.float64).reshape(out.shape)).long()
    multiplier = torch.ones(out.numel(), dtype=torch.float64)
    multiplier[index.reshape(-1)] = (1 / scale_in)[:, None].expand_as(index).reshape(-1)
    with torch.no_grad():
        out.mul_(multiplier.reshape(out.shape).to(out))
        w_in = params[pair.in_weight]
        w_in.mul_(scale_in.to(w_in).reshape(-1, *([1] * (w_in.dim() - 1))))
        if pair.in_bias is not None:
            params[pair.in_bias].mul_(scale_in.to(w_in))
    return float((scale_in - 1).abs().max())


def rebalance(
    model: nn.Module,
    *,
    rho: float | None = None,
    delta: float | None = None,
    pairs: Sequence[str] | None = None,
) -> nn.Module:
    """A copy of ``model`` whose hidden units have the balance ``rho`` (or ``delta``) at unchanged products.

    Every unit of every chosen layer pair keeps the product ``|a_k| |(w_k, b_k)|`` and, since only homogeneous ops lie
    between the layers, the network computes the same function; only the split of the scale between the two layers
    changes (see the module docstring). When pairs share a layer (a deep MLP), passes alternate until every unit is
    within :data:`TOLERANCE` of its target. Balances are the plain (equal learning rates) ones.

    Args:
        model: The model at initialisation (not changed).
        rho: Target normalised balance in ``(-1, 1)``: ``+`` upstream (the earlier layer small), ``0`` balanced,
            ``-`` downstream. Scale-free, so it composes with :func:`~regimescope.knobs.init_scale.scale_init`.
        delta: Target ``delta_k = |a_k|^2 - |w_k|^2 - b_k^2`` instead (GRQ's and L2R's absolute balance).
        pairs: Pair names (``"<in>-<out>"``, as in ``regimescope/balance/<pair>``) to rebalance; all found pairs
            when ``None``.

    Returns:
        The rebalanced copy.

    Raises:
        ValueError: When neither or both of ``rho``/``delta`` are given, ``rho`` is outside ``(-1, 1)``, the model has
            no pair, or a chosen pair is not conserved (the message names the op in between and how to choose pairs).
    """
    if (rho is None) == (delta is None):
        raise ValueError(f"Pass exactly one of `rho` and `delta`; received rho={rho!r}, delta={delta!r}.")
    if rho is not None and not -1 < rho < 1:
        raise ValueError(
            f"`rho` must lie strictly between -1 and 1 (the fully one-sided ends need a zero layer); received {rho}."
        )
    if delta is not None and not math.isfinite(delta):
        raise ValueError(f"`delta` must be a finite number; received {delta}.")
    copied = working_copy(model)
    chosen = _pairs(copied, pairs)
    params = dict(copied.named_parameters())
    for _ in range(MAX_SWEEPS):
        if max(_apply(pair, params, rho, delta) for pair in chosen) < TOLERANCE or len(chosen) == 1:
            break
    return copied
