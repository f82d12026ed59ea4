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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from regimescope import batch
from regimescope.functional.kernel_distance import kernel_distance, relative_change
from regimescope.ntk import empirical_ntk
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.outputs import OutputFn


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


def _weighted_kernel(
    model: nn.Module, inputs: batch.Inputs, rates: Mapping[str, float], settings: Mapping[str, object]
) -> torch.Tensor:
    """``K_H = sum_l eta_l K_l`` in float64 (``eta_l`` the mean rate of layer ``l``'s parameters)."""
    layers = empirical_ntk(model, inputs, per_layer=True, **settings)
    block_rates = {
        block.name: sum(rates[n] for n in block.param_names) / len(block.param_names)
        for block in parameter_blocks(model)
    }
    return sum(block_rates.get(name, 1.0) * kernel.double().cpu() for name, kernel in layers.items())


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
) -> list[LazyRatio]:
    """The lazy ratio ``q(gamma)`` at each relative ridge (see the module docstring).

    Args:
        work: A disposable copy of the model at initialisation (``copy.deepcopy(model)``): its parameters are
            overwritten with each displaced ``theta_0 + dtheta``.
        inputs: The probe inputs.
        prediction: ``work``'s outputs on ``inputs``, ``(n, k)``, with their autograd graph.
        residual: The target residual on the probe, ``(n, k)`` (:func:`~regimescope.forecast.residual.target_residual`).
        ridges: Ridges relative to the largest eigenvalue of ``K_H / k``, e.g. ``(0.1, 1e-4)``.
        learning_rates: ``parameter name -> lr``; per-layer rates weight the kernel and the step.
        output_fn: Maps the model's return value to the output tensor.
        mode: ``"eval"`` or ``"train"`` behaviour of the model (as in ``empirical_ntk``).
        dtype: Compute dtype of the kernels.

    Returns:
        One :class:`LazyRatio` per ridge, in order.
    """
    settings = {"output_fn": output_fn, "mode": mode, "dtype": dtype}
    rates = _rates(work, learning_rates)
    k_0 = _weighted_kernel(work, inputs, rates, settings)
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
        )
        for c in solutions
    ]
    ratios = []
    for ridge, coefficients, grads in zip(ridges, solutions, steps):
        with torch.no_grad():
            for (name, param), grad in zip(params.items(), grads):
                param.copy_(start[name] + rates[name] * grad)
        k_1 = _weighted_kernel(work, inputs, rates, settings)
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
