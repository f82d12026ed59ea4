"""The initialisation geometry the forecast reports: layer balance, width, homogeneity and output scale."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.conservation import conserved_quantities, find_layer_pairs

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
    """

    name: str
    units: int
    rho: float
    conserved: bool
    reason: str

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
        pairs: Every layer pair of trainable layers found by tracing (empty when the model cannot be traced).
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
) -> InitGeometry:
    """Describe the initialisation of ``model``.

    Args:
        model: The model at initialisation (read, not changed).
        outputs: Its outputs on the probe, ``(n, k)``.
        targets: The probe's targets, or ``None``.
        learning_rates: ``parameter name -> lr``, weighting the balances when layer rates differ.

    Returns:
        The geometry; models ``torch.fx`` cannot trace get no pairs (``traced=False``), never an error.
    """
    try:
        found = find_layer_pairs(model)
    except ValueError as error:
        logger.info("regimescope forecast: no layer pairs (%s)", error)
        found = None
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    chosen = [pair for pair in found or () if set(pair.parameter_names) <= trainable]
    quantities = {}
    for lrs in ([dict(learning_rates)] if learning_rates else []) + [None]:
        try:
            quantities = conserved_quantities(model, lrs, pairs=chosen, matrices=False)
            break
        except ValueError as error:  # a pair parameter outside the optimizer: report the plain balance
            logger.info("regimescope forecast: plain layer balance (%s)", error)
    pairs = tuple(
        PairGeometry(name, q.delta.numel(), float(q.rho.mean()), q.conserved, q.reason)
        for name, q in quantities.items()
    )
    scale = None
    if targets is not None and targets.is_floating_point() and targets.numel() == outputs.numel():
        norm = float(targets.double().norm())
        scale = float(outputs.double().norm()) / norm if norm > 0 else None
    return InitGeometry(pairs=pairs, traced=found is not None, output_scale=scale)
