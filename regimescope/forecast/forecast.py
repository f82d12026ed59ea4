"""The step-0 forecast: lazy, rich or delayed-rich, from the initialisation alone, with its reasoning."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.conservation.pairs import LayerPair
from regimescope.conservation.summary import count_summary
from regimescope.forecast.geometry import InitGeometry, PairGeometry, init_geometry
from regimescope.forecast.lazy_ratio import LazyRatio, UndefinedRatio, kernel_settings, lazy_ratios, weighted_kernel
from regimescope.forecast.residual import target_residual
from regimescope.guards import preserved_rng, set_mode, shadow_copy
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
                pairs=tuple(
                    PairGeometry(**{**pair, "causes": tuple(pair.get("causes", ()))}) for pair in geometry["pairs"]
                ),
                traced=geometry["traced"],
                output_scale=geometry["output_scale"],
            ),
            reasons=tuple(state["reasons"]),
        )

    def markdown(self) -> str:
        """The forecast and its reasons as markdown (for TensorBoard text and logs): a few lines, however many
        layers the model has (every pair's balance and reason stay in :attr:`geometry`)."""
        head = f"**forecast at step 0: {self.label or 'none'}**"
        return "\n".join([head, *(f"- {reason}" for reason in self.reasons)])

    def __repr__(self) -> str:
        """One line: label, the two lazy ratios, pair counts and output scale (the details are attributes)."""

        def ratio(value: LazyRatio | None) -> str:
            return "None" if value is None else f"{value.change:.3g}"

        pairs = self.geometry.pairs
        scale = self.geometry.output_scale
        return (
            f"Forecast(label={self.label!r}, fast={ratio(self.fast)}, full={ratio(self.full)}, pairs={len(pairs)} "
            f"({sum(p.conserved for p in pairs)} conserved), output_scale="
            f"{'None' if scale is None else format(scale, '.3g')}, reasons={len(self.reasons)})"
        )


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


LISTED = 4
"""Pairs named one by one in the forecast's reasons; beyond that they are summarised (counts, extremes)."""


def _balance_reason(conserved: list[PairGeometry]) -> str:
    meaning = "+1 upstream: small earlier layer, fast features; -1 downstream: small later layer, fixed features first"
    if len(conserved) <= LISTED:
        parts = ", ".join(f"{p.name} {p.rho:+.2f} ({p.side}, {p.units} units)" for p in conserved)
        return f"Layer balance rho ({meaning}): {parts}."
    low, high = min(conserved, key=lambda p: p.rho), max(conserved, key=lambda p: p.rho)
    sides = count_summary((p.side, p.name) for p in conserved)
    mean = sum(p.rho for p in conserved) / len(conserved)
    return (
        f"Layer balance rho ({meaning}) over {len(conserved)} conserved pairs: mean {mean:+.2f}, from {low.rho:+.2f} "
        f"({low.name}) to {high.rho:+.2f} ({high.name}); {sides}."
    )


def _broken_reason(broken: list[PairGeometry], total: int) -> str:
    if len(broken) <= LISTED:
        listed = "; ".join(f"{p.name} ({p.reason})" for p in broken)
        return f"Balance not conserved for {listed}: there the forecast rests on the lazy ratio alone."
    causes = count_summary((" + ".join(p.causes) or "other", p.name) for p in broken)
    return (
        f"Balance not conserved for {len(broken)} of {total} pairs: {causes} (each pair's reason: "
        "forecast.geometry.pairs); there the forecast rests on the lazy ratio alone."
    )


def _geometry_reasons(geometry: InitGeometry) -> list[str]:
    reasons = []
    conserved = [pair for pair in geometry.pairs if pair.conserved]
    if conserved:
        reasons.append(_balance_reason(conserved))
    broken = [pair for pair in geometry.pairs if not pair.conserved]
    if broken:
        reasons.append(_broken_reason(broken, len(geometry.pairs)))
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
    kernels: Mapping[str, torch.Tensor] | None = None,
    kernel_options: Mapping[str, Any] | None = None,
    pairs: Sequence[LayerPair] | Callable[[], Sequence[LayerPair]] | None = None,
) -> Forecast:
    """Forecast the regime before training from the initialisation and the probe's targets.

    The lazy ratio (:mod:`regimescope.forecast.lazy_ratio`) asks how much the NTK would have to change for the
    kernel solution to fit the probe; it folds the initialisation's scale, width, output scale and layer balance
    into one number. Below :data:`LAZY_RATIO` on every direction learnt within the horizon: ``"lazy"``; below it on
    the directions learnt first only: ``"delayed-rich"``; above it already there: ``"rich"``. The layer balance,
    widths, activation homogeneity and output scale are reported with it.

    Costs two NTK evaluations on the probe (three without ``kernels``) and two backward passes, on a copy of the
    model (:func:`~regimescope.guards.shadow_copy`; the model, its buffers, gradients and the random state are left
    untouched, and the model is never run).

    Args:
        model: The model at initialisation.
        probe: The probe; its targets set the task scale (without them the forecast has no label).
        learning_rates: ``parameter name -> lr`` (per-layer rates weight the kernel and the steps).
        output_fn: Maps the model's return value to the output tensor.
        mode: Measurement mode of the model during the forecast (see :func:`regimescope.guards.set_mode`).
        dtype: Compute dtype of the kernels.
        kernels: The per-layer trace kernels of ``model`` on ``probe`` at initialisation, when they are computed
            already (the monitor's step-0 ``Snapshot.layer_kernels``); ``None`` computes them.
        kernel_options: ``empirical_ntk`` arguments the ``kernels`` were computed with (the monitor's
            ``CaptureConfig.kernel_options()``), so that the displaced kernels are computed alike; they override
            ``output_fn``/``mode``/``dtype``. Output or layer subsets are refused (the ratio needs the whole trace).
        pairs: The model's layer pairs when they were found already, or a function that returns them (raising a
            ``ValueError`` when the model cannot be traced); ``None``: the model is traced.

    Returns:
        The forecast. When the lazy ratio is undefined (a zero or non-finite initial kernel, e.g. every parameter
        the outputs depend on initialised at zero) it has no label and says why, never an infinite ratio.

    Raises:
        ValueError: When ``kernel_options`` selects a subset of outputs or layers.
    """
    device = probe.device
    n = probe.size
    settings = kernel_settings(output_fn, mode, dtype, kernel_options)
    with preserved_rng([device]):
        work = shadow_copy(model, share_parameters=False)
        set_mode(work, settings["mode"])
        prediction = flat_outputs(batch.call_model(work, probe.inputs), n, settings["output_fn"])
        geometry = init_geometry(model, prediction.detach(), probe.targets, learning_rates, pairs)
        residual = target_residual(prediction, probe.targets)
        reasons = _geometry_reasons(geometry)
        if residual is None:
            reason = "No forecast: the probe has no targets matching the outputs; pass rs.Probe(inputs, targets)."
            return Forecast(None, None, None, geometry, (reason, *reasons))
        if float(residual.abs().max()) == 0:
            reason = "The initial function already fits the probe: there is nothing to learn, the kernel stays put."
            return Forecast("lazy", None, None, geometry, (reason, *reasons))
        initial = None if kernels is None else weighted_kernel(model, kernels, learning_rates)
        try:
            fast, full = lazy_ratios(
                work,
                probe.inputs,
                prediction,
                residual,
                (FAST_RIDGE, SLOW_RIDGE),
                learning_rates=learning_rates,
                kernel=initial,
                kernel_options=settings,
            )
        except UndefinedRatio as error:
            return Forecast(None, None, None, geometry, (f"No forecast: {error}", *reasons))
    if not all(math.isfinite(v) for ratio in (fast, full) for v in (ratio.change, ratio.distance, ratio.fitted)):
        reason = (
            f"No forecast: the lazy ratio is not finite (fast {fast.change:.3g}, full {full.change:.3g}): the "
            "displaced kernel overflowed in the compute dtype; pass dtype=torch.float64."
        )
        return Forecast(None, None, None, geometry, (reason, *reasons))
    label, reason = _decide(fast, full)
    return Forecast(label, fast, full, geometry, (reason, *reasons))
