"""The lazy ratio: how much the kernel would have to change for the lazy (kernel) solution to fit the probe.

In the lazy regime the network moves as its linearisation: with rates ``H = diag(eta_p)``, kernel
``K_H = J H J^T`` and residual ``r``, gradient flow reaches the ridge-regularised kernel solution

    dtheta = H J^T c,    c = (K_H / k + gamma I)^{-1} r,

(``k`` outputs; the trace kernel over ``k`` stands in for each output's kernel), where the ridge ``gamma`` plays the
part of a finite training time ``t ~ 1 / gamma``: directions of ``K_H`` with eigenvalues below ``gamma`` are not yet
learnt. The lazy picture is self-consistent only if the kernel barely changes along the way, so the forecast
compares

    q(gamma) = |K_H(theta_0 + dtheta) - K_H(theta_0)|_F / |K_H(theta_0)|_F

with a threshold: ``q << 1`` lazy, ``q >~ 1`` rich. ``q`` carries the scale of the initialisation (small weights:
``dtheta >> theta``), the width (``~ m^{-1/2}`` in the NTK parametrisation), the output scale (``~ 1 / alpha``) and
the layer balance (a small readout leaves the slow directions to a large, slowly moving layer) at once. Two
ridges separate "fast" directions (``gamma = 0.1 lambda_max``: learnt within ~10 time constants of the fastest
one) from all directions learnt within the horizon (``gamma = 1e-4 lambda_max``): lazy on the fast ones and rich on
the rest is the delayed-rich signature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.functional.kernel_distance import kernel_distance, relative_change
from regimescope.ntk import empirical_ntk
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.outputs import OutputFn


class UndefinedRatio(ValueError):
    """The lazy ratio has no value: the initial kernel is zero or not finite."""


@dataclass(frozen=True)
class LazyRatio:
    """The kernel change the lazy solution needs, at one ridge.

    Attributes:
        ridge: ``gamma / lambda_max(K_H / k)``.
        change: ``q = |K_H(theta_0 + dtheta) - K_H(theta_0)|_F / |K_H(theta_0)|_F``.
        distance: ``S(K_H(theta_0), K_H(theta_0 + dtheta))``, the direction part of the change.
        fitted: Fraction of ``|r|^2`` the ridge solution fits on the probe (``1 - |r - K_H c / k|^2 / |r|^2``).
    """

    ridge: float
    change: float
    distance: float
    fitted: float


def _rates(model: nn.Module, learning_rates: Mapping[str, float] | None) -> dict[str, float]:
    """Per-parameter rates, all 1 when none are known or they are all equal (only their ratios matter)."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    known = {name: float(learning_rates[name]) for name in names if learning_rates and name in learning_rates}
    if len(known) < len(names) or len(set(known.values())) <= 1:
        return dict.fromkeys(names, 1.0)
    return known


def weighted_kernel(
    model: nn.Module, layers: Mapping[str, torch.Tensor], learning_rates: Mapping[str, float] | None = None
) -> torch.Tensor:
    """``K_H = sum_l eta_l K_l`` in float64 on the CPU, from the per-layer kernels ``K_l`` of ``model``.

    Args:
        model: The model the kernels were computed on (its parameter blocks name the layers).
        layers: ``layer name -> (n, n)`` per-layer trace kernels (``empirical_ntk(..., per_layer=True)``, or a
            monitor snapshot's ``layer_kernels``).
        learning_rates: ``parameter name -> lr``; ``eta_l`` is the mean rate of layer ``l``'s parameters (all 1
            when they are unknown or equal: only their ratios matter).
    """
    rates = _rates(model, learning_rates)
    block_rates = {
        block.name: sum(rates.get(n, 1.0) for n in block.param_names) / len(block.param_names)
        for block in parameter_blocks(model)
        if block.param_names
    }
    return sum(block_rates.get(name, 1.0) * kernel.double().cpu() for name, kernel in layers.items())


def kernel_settings(
    output_fn: OutputFn | None, mode: str, dtype: torch.dtype, kernel_options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ``empirical_ntk`` keyword arguments of every kernel of one forecast (``kernel_options`` win)."""
    settings = {"output_fn": output_fn, "mode": mode, "dtype": dtype, **(kernel_options or {}), "per_layer": True}
    for key in ("outputs", "layers"):
        if settings.get(key) is not None:
            raise ValueError(
                f"kernel_options[{key!r}] = {settings[key]!r}; expected None: the lazy ratio needs the trace kernel "
                "over every output and every layer (an output projection or a sketch estimates it; a subset does "
                "not). Leave it out, or let the forecast compute its own kernels."
            )
    return settings


def lazy_ratios(
    work: nn.Module,
    inputs: batch.Inputs,
    prediction: torch.Tensor,
    residual: torch.Tensor,
    ridges: Sequence[float],
    *,
    learning_rates: Mapping[str, float] | None = None,
    output_fn: OutputFn | None = None,
    mode: str = "eval",
    dtype: torch.dtype = torch.float32,
    kernel: torch.Tensor | None = None,
    kernel_options: Mapping[str, Any] | None = None,
) -> list[LazyRatio]:
    """The lazy ratio ``q(gamma)`` at each relative ridge (see the module docstring).

    Args:
        work: A disposable copy of the model at initialisation (``shadow_copy(model, share_parameters=False)``):
            its parameters are overwritten with each displaced ``theta_0 + dtheta``.
        inputs: The probe inputs.
        prediction: ``work``'s outputs on ``inputs``, ``(n, k)``, with their autograd graph.
        residual: The target residual on the probe, ``(n, k)`` (:func:`~regimescope.forecast.residual.target_residual`).
        ridges: Ridges relative to the largest eigenvalue of ``K_H / k``, e.g. ``(0.1, 1e-4)``.
        learning_rates: ``parameter name -> lr``; per-layer rates weight the kernel and the step.
        output_fn: Maps the model's return value to the output tensor.
        mode: ``"eval"`` or ``"train"`` behaviour of the model (as in ``empirical_ntk``).
        dtype: Compute dtype of the kernels.
        kernel: ``K_H(theta_0)`` when it is known already (:func:`weighted_kernel` of the step-0 per-layer kernels),
            computed with the same ``kernel_options``; ``None`` computes it.
        kernel_options: Further ``empirical_ntk`` arguments of every kernel (``implementation``, ``max_memory``,
            ``output_projection``, ``sketch``, ...); they override ``output_fn``/``mode``/``dtype``.

    Returns:
        One :class:`LazyRatio` per ridge, in order. A trainable parameter the outputs do not depend on takes no
        step.

    Raises:
        ValueError: When ``kernel_options`` selects a subset of outputs or layers.
        UndefinedRatio: When ``K_H(theta_0)`` is zero or not finite (the kernel solution, hence the ratio, is
            undefined).
    """
    settings = kernel_settings(output_fn, mode, dtype, kernel_options)
    rates = _rates(work, learning_rates)
    k_0 = weighted_kernel(work, empirical_ntk(work, inputs, **settings), learning_rates) if kernel is None else kernel
    k_0 = k_0.double().cpu()
    scale = float(k_0.norm())
    if not math.isfinite(scale) or scale == 0:
        raise UndefinedRatio(
            f"the initial kernel K_H has norm {scale}: every output's gradient vanishes (or overflows) at "
            "initialisation, so the lazy ratio is undefined."
        )
    outputs = residual.shape[1]
    values, vectors = torch.linalg.eigh(k_0 / outputs)
    top = float(values.max().clamp_min(torch.finfo(torch.float64).tiny))
    params = {name: p for name, p in work.named_parameters() if name in rates}
    start = {name: p.detach().clone() for name, p in params.items()}
    solutions = [vectors @ ((vectors.T @ residual) / (values + ridge * top)[:, None]) for ridge in ridges]
    steps = [
        torch.autograd.grad(
            (prediction * c.to(device=prediction.device, dtype=prediction.dtype)).sum(),
            list(params.values()),
            retain_graph=True,
            allow_unused=True,
        )
        for c in solutions
    ]
    ratios = []
    for ridge, coefficients, grads in zip(ridges, solutions, steps):
        with torch.no_grad():
            for (name, param), grad in zip(params.items(), grads):
                param.copy_(start[name] if grad is None else start[name] + rates[name] * grad)
        k_1 = weighted_kernel(work, empirical_ntk(work, inputs, **settings), learning_rates)
        fit = k_0 / outputs @ coefficients
        ratios.append(
            LazyRatio(
                ridge=ridge,
                change=float(relative_change(k_1, k_0)),
                distance=float(kernel_distance(k_0, k_1)),
                fitted=1 - float((residual - fit).square().sum() / residual.square().sum()),
            )
        )
    return ratios
