"""The initialisation geometry the forecast reports: layer balance, width, homogeneity and output scale."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.conservation import find_layer_pairs, mean_balance, pair_rates, unit_squares
from regimescope.conservation.pairs import LayerPair

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairGeometry:
    """One layer pair at initialisation.

    Attributes:
        name: Pair name ``"<in>-<out>"``.
        units: Hidden units between the two layers (the width).
        rho: Mean normalised balance ``rho_k`` over the units: ``+1`` upstream (the earlier layer is small and
            learns fast), ``0`` balanced, ``-1`` downstream (the later layer is small).
        conserved: Whether the balance is conserved under gradient flow.
        reason: Why not (empty when conserved).
        causes: The :class:`~regimescope.conservation.pairs.Break` values behind ``reason``.
    """

    name: str
    units: int
    rho: float
    conserved: bool
    reason: str
    causes: tuple[str, ...] = ()

    @property
    def side(self) -> str:
        """``"upstream"``, ``"balanced"`` or ``"downstream"`` (``|rho| < 0.2`` counts as balanced)."""
        if self.rho > 0.2:
            return "upstream"
        if self.rho < -0.2:
            return "downstream"
        return "balanced"


@dataclass(frozen=True)
class InitGeometry:
    """What the initialisation looks like, as far as the regime is concerned.

    Attributes:
        pairs: Every layer pair of trainable layers with a balance found by tracing (empty when the model cannot be
            traced; pairs whose weights a parametrization computes, or whose units are all zero, have none).
        traced: Whether the pairs could be found.
        output_scale: ``|f_0|_F / |y|_F`` on the probe (``None`` without matching float targets): far above 1,
            the initial function dwarfs the task (Chizat et al.'s large output scale, lazy-prone).
    """

    pairs: tuple[PairGeometry, ...]
    traced: bool
    output_scale: float | None

    @property
    def homogeneous(self) -> bool:
        """Whether every pair's balance is conserved (only positively homogeneous ops between layers)."""
        return all(pair.conserved for pair in self.pairs)


def init_geometry(
    model: nn.Module,
    outputs: torch.Tensor,
    targets: torch.Tensor | None,
    learning_rates: Mapping[str, float] | None = None,
    pairs: Sequence[LayerPair] | Callable[[], Sequence[LayerPair]] | None = None,
) -> InitGeometry:
    """Describe the initialisation of ``model``.

    Args:
        model: The model at initialisation (read, not changed).
        outputs: Its outputs on the probe, ``(n, k)``.
        targets: The probe's targets, or ``None``.
        learning_rates: ``parameter name -> lr``, weighting the balances when layer rates differ.
        pairs: The model's layer pairs when they were found already, or a function that returns them (raising a
            ``ValueError`` when the model cannot be traced, e.g. the monitor's shared, traced-once
            :meth:`~regimescope.indicators.base.Context.layer_pairs`); ``None`` traces the model.

    Returns:
        The geometry; models ``torch.fx`` cannot trace get no pairs (``traced=False``), never an error.
    """
    try:
        if pairs is None:
            found = find_layer_pairs(model)
        else:
            found = list(pairs() if callable(pairs) else pairs)
    except ValueError as error:
        logger.info("regimescope forecast: no layer pairs (%s)", error)
        found = None
    parameters = dict(model.named_parameters(remove_duplicate=False))
    weights = {name: p.detach() for name, p in parameters.items()}
    trainable = {name for name, p in parameters.items() if p.requires_grad}
    pairs = []
    for pair in found or ():
        if not pair.has_balance or not set(pair.parameter_names) <= trainable:
            continue
        try:
            rates = pair_rates(pair, learning_rates)
        except ValueError as error:  # a pair parameter outside the optimizer: report the plain balance
            logger.debug("regimescope forecast: plain layer balance for %s (%s)", pair.name, error)
            rates = None
        rho = mean_balance(unit_squares(pair, weights), rates)
        if rho is not None:
            causes = tuple(sorted(cause.value for cause in pair.breaks))
            pairs.append(PairGeometry(pair.name, pair.units, rho, pair.conserved, pair.reason, causes))
    scale = None
    if targets is not None and targets.is_floating_point() and targets.numel() == outputs.numel():
        norm = float(targets.double().norm())
        scale = float(outputs.double().norm()) / norm if norm > 0 else None
    return InitGeometry(pairs=tuple(pairs), traced=found is not None, output_scale=scale)
