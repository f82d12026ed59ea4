"""The step-0 forecast: lazy, rich or delayed-rich, from the initialisation alone, with its reasoning."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.forecast.geometry import InitGeometry, PairGeometry, init_geometry
from regimescope.forecast.lazy_ratio import LazyRatio, lazy_ratios
from regimescope.forecast.residual import target_residual
from regimescope.guards import preserved_rng
from regimescope.outputs import OutputFn, flat_outputs
from regimescope.probe import Probe

logger = logging.getLogger(__name__)

FAST_RIDGE = 0.1
"""Ridge (relative to the kernel's largest eigenvalue) of the directions learnt first."""
SLOW_RIDGE = 1e-4
"""Ridge of every direction learnt within the horizon (``~10^4`` time constants of the fastest one)."""
LAZY_RATIO = 0.085
"""Lazy ratio below which the lazy solution is self-consistent (the kernel changes by less than ~8.5%).

Calibrated on the scenarios of :mod:`regimescope.scenarios`: the geometric mean of the largest ratio a
lazy run needs (0.023, the minimal model with ``delta = +9``) and the smallest a rich run needs on its fast
directions (0.31, the upstream teacher-student run); ``benchmarks/verdicts.py`` recomputes both.
"""
LABELS = ("lazy", "rich", "delayed-rich")
"""Forecast labels."""


@dataclass(frozen=True)
class Forecast:
    """What the initialisation says about the coming regime.

    Attributes:
        label: ``"lazy"``, ``"rich"``, ``"delayed-rich"``, or ``None`` when there is no task scale to judge by
            (the probe has no targets matching the outputs).
        fast: The lazy ratio on the directions learnt first (``None`` without a label).
        full: The lazy ratio on every direction learnt within the horizon.
        geometry: Layer balance, widths, homogeneity and output scale at initialisation.
        reasons: Sentences explaining the label, most important first.
    """

    label: str | None
    fast: LazyRatio | None
    full: LazyRatio | None
    geometry: InitGeometry
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_state(self) -> dict[str, Any]:
        """The forecast as plain containers (for checkpoints loaded with ``weights_only=True``)."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Forecast:
        """Inverse of :meth:`to_state`."""
        geometry = state["geometry"]
        return cls(
            label=state["label"],
            fast=None if state["fast"] is None else LazyRatio(**state["fast"]),
            full=None if state["full"] is None else LazyRatio(**state["full"]),
            geometry=InitGeometry(
                pairs=tuple(PairGeometry(**pair) for pair in geometry["pairs"]),
                traced=geometry["traced"],
                output_scale=geometry["output_scale"],
            ),
            reasons=tuple(state["reasons"]),
        )

    def markdown(self) -> str:
        """The forecast and its reasons as markdown (for TensorBoard text and logs)."""
        head = f"**forecast at step 0: {self.label or 'none'}**"
        return "\n".join([head, *(f"- {reason}" for reason in self.reasons)])


def confirmed(label: str | None, early: str, final: str) -> bool:
    """Whether training confirmed a forecast: the verdict's label early in the run and at its end.

    ``lazy``: the run ends lazy. ``rich``: it ends rich. ``delayed-rich``: lazy early, no longer lazy at the end.
    """
    if label == "lazy":
        return final == "lazy"
    if label == "rich":
        return final == "rich"
    if label == "delayed-rich":
        return early == "lazy" and final != "lazy"
    return False


def _decide(fast: LazyRatio, full: LazyRatio) -> tuple[str, str]:
    """The label and its main reason from the two lazy ratios."""
    if full.change < LAZY_RATIO:
        return "lazy", (
            f"Fitting the probe targets with the initial kernel changes the NTK by {full.change:.2g} of its norm "
            f"(lazy below {LAZY_RATIO}): the linearised network is self-consistent, the kernel regime holds."
        )
    if fast.change < LAZY_RATIO:
        return "delayed-rich", (
            f"The directions the initial kernel learns first need an NTK change of only {fast.change:.2g} (lazy), but "
            f"fitting all of the probe needs {full.change:.3g} (rich): lazy first, rich once the slow directions are "
            "reached."
        )
    return "rich", (
        f"Fitting the probe with the initial kernel would change the NTK by {fast.change:.3g} of its norm already "
        f"on the fastest directions (lazy below {LAZY_RATIO}): the linearised picture breaks, features must be learnt."
    )


def _geometry_reasons(geometry: InitGeometry) -> list[str]:
    reasons = []
    conserved = [pair for pair in geometry.pairs if pair.conserved]
    if conserved:
        parts = ", ".join(f"{p.name} {p.rho:+.2f} ({p.side}, {p.units} units)" for p in conserved)
        reasons.append(
            f"Layer balance rho (+1 upstream: small earlier layer, fast features; -1 downstream: small later layer, "
            f"fixed features first): {parts}."
        )
    broken = [pair for pair in geometry.pairs if not pair.conserved]
    if broken:
        reasons.append(
            "Balance not conserved for "
            + "; ".join(f"{p.name} ({p.reason})" for p in broken)
            + ": there the forecast rests on the lazy ratio alone."
        )
    elif conserved:
        reasons.append("Activations positively homogeneous: the balance is conserved by gradient flow.")
    if not geometry.traced:
        reasons.append("The model could not be traced, so no layer balance is reported.")
    if geometry.output_scale is not None:
        meaning = (
            "the initial function dwarfs the targets (large output scale: lazy-prone)"
            if geometry.output_scale > 1
            else "the initial function is small next to the targets"
        )
        reasons.append(f"Output scale |f_0| / |y| = {geometry.output_scale:.3g}: {meaning}.")
    return reasons


def forecast_regime(
    model: nn.Module,
    probe: Probe,
    *,
    learning_rates: Mapping[str, float] | None = None,
    output_fn: OutputFn | None = None,
    mode: str = "eval",
    dtype: torch.dtype = torch.float32,
) -> Forecast:
    """Forecast the regime before training from the initialisation and the probe's targets.

    The lazy ratio (:mod:`regimescope.forecast.lazy_ratio`) asks how much the NTK would have to change for the
    kernel solution to fit the probe; it folds the initialisation's scale, width, output scale and layer balance
    into one number. Below :data:`LAZY_RATIO` on every direction learnt within the horizon: ``"lazy"``; below it on
    the directions learnt first only: ``"delayed-rich"``; above it already there: ``"rich"``. The layer balance,
    widths, activation homogeneity and output scale are reported with it.

    Costs three NTK evaluations on the probe and two backward passes, on a deep copy of the model (the model,
    its gradients and the random state are left untouched).

    Args:
        model: The model at initialisation.
        probe: The probe; its targets set the task scale (without them the forecast has no label).
        learning_rates: ``parameter name -> lr`` (per-layer rates weight the kernel and the steps).
        output_fn: Maps the model's return value to the output tensor.
        mode: ``"eval"`` or ``"train"`` behaviour of the model during the forecast.
        dtype: Compute dtype of the kernels.

    Returns:
        The forecast.
    """
    device = probe.device
    n = probe.size
    with preserved_rng([device]):
        work = copy.deepcopy(model).train(mode == "train")
        prediction = flat_outputs(batch.call_model(work, probe.inputs), n, output_fn)
        geometry = init_geometry(model, prediction.detach(), probe.targets, learning_rates)
        residual = target_residual(prediction, probe.targets)
        reasons = _geometry_reasons(geometry)
        if residual is None:
            reason = "No forecast: the probe has no targets matching the outputs; pass rs.Probe(inputs, targets)."
            return Forecast(None, None, None, geometry, (reason, *reasons))
        if float(residual.abs().max()) == 0:
            reason = "The initial function already fits the probe: there is nothing to learn, the kernel stays put."
            return Forecast("lazy", None, None, geometry, (reason, *reasons))
        fast, full = lazy_ratios(
            work,
            probe.inputs,
            prediction,
            residual,
            (FAST_RIDGE, SLOW_RIDGE),
            learning_rates=learning_rates,
            output_fn=output_fn,
            mode=mode,
            dtype=dtype,
        )
    label, reason = _decide(fast, full)
    return Forecast(label, fast, full, geometry, (reason, *reasons))
