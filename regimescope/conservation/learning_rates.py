"""The learning rates that weight a pair's conserved quantities, read from a number, a dict or an optimizer.

Under gradient flow with per-parameter rates ``eta_p``, ``sum_p +-|p_k|^2 / eta_p`` is conserved (theory.md section
2). Only the ratios of the rates matter: a common factor, including a learning-rate schedule applied to every
group alike, rescales the quantity without breaking its conservation. With equal rates the plain, rate-free form
``|a_k|^2 - |w_k|^2 - b_k^2`` is reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from regimescope.conservation.balance_pair import BalancePair

LearningRates = Optional[Union[float, Mapping[str, float], torch.optim.Optimizer]]  # Union: evaluated at runtime on 3.9
"""What ``lrs=`` accepts: ``None`` or a number (equal rates), ``parameter name -> lr``, or an optimizer."""


@dataclass(frozen=True)
class PairRates:
    """Learning rates of the parameters of one layer pair.

    Attributes:
        in_weight: Rate of the incoming weight (``eta_in``).
        in_bias: Rate of the incoming bias (``None`` when the layer has none).
        out_weight: Rate of the outgoing weight (``eta_out``).
        out_bias: Rate of the outgoing-side bias (attention ``qk`` pairs: the query bias); ``None`` for layer pairs.
    """

    in_weight: float
    in_bias: float | None
    out_weight: float
    out_bias: float | None = None


def _check_rate(name: str, value: object, source: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"The learning rate of {name!r} in {source} is {value!r}; expected a finite number > 0. A parameter "
            "that should not train belongs outside the optimizer with requires_grad_(False)."
        )
    return float(value)


def group_learning_rates(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, float]:
    """``parameter name -> lr`` of the optimizer's param groups, as they are (no checks; empty without optimizer).

    A parameter tied between modules appears under each of its names. The monitor reads this at every measurement,
    so learning-rate schedules (warm-up from 0 included) are followed.
    """
    if optimizer is None:
        return {}
    by_id = {id(p): float(group["lr"]) for group in optimizer.param_groups for p in group["params"] if "lr" in group}
    return {name: by_id[id(p)] for name, p in model.named_parameters(remove_duplicate=False) if id(p) in by_id}


def learning_rates_from_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Map each of the model's parameters that the optimizer trains to its param group's ``lr``, checked.

    Args:
        model: The model whose parameter names are used.
        optimizer: Any optimizer whose param groups carry an ``"lr"``.

    Returns:
        ``parameter name -> lr``; parameters in no param group are absent (they are not trained).

    Raises:
        ValueError: When a group has no ``"lr"`` or a non-positive one.
    """
    for index, group in enumerate(optimizer.param_groups):
        if "lr" not in group:
            raise ValueError(
                f"Param group {index} of {type(optimizer).__name__} has no 'lr'; expected every group to carry one. "
                "Pass lrs as a dict parameter name -> lr instead."
            )
    rates = group_learning_rates(model, optimizer)
    for name, rate in rates.items():
        _check_rate(name, rate, "its param group")
    return rates


def resolve_learning_rates(model: nn.Module, lrs: LearningRates) -> dict[str, float] | None:
    """Normalise ``lrs`` to ``parameter name -> lr``, or ``None`` for equal rates.

    Args:
        model: The model whose parameter names the rates refer to.
        lrs: ``None`` or a number (equal rates), a dict ``parameter name -> lr``, or an optimizer.

    Returns:
        The per-parameter rates, or ``None`` when every parameter has the same rate by construction.

    Raises:
        TypeError: When ``lrs`` has another type.
        ValueError: When a rate is not a positive number or a dict key names no parameter of the model.
    """
    if lrs is None:
        return None
    if isinstance(lrs, (int, float)) and not isinstance(lrs, bool):
        _check_rate("every parameter", lrs, "lrs")
        return None
    if isinstance(lrs, torch.optim.Optimizer):
        return learning_rates_from_optimizer(model, lrs)
    if isinstance(lrs, Mapping):
        known = {name for name, _ in model.named_parameters(remove_duplicate=False)}
        unknown = sorted(set(lrs) - known)
        if unknown:
            raise ValueError(
                f"lrs names {unknown}, which are not parameters of the model; expected names from "
                f"model.named_parameters(), e.g. {sorted(known)[:4]}."
            )
        return {name: _check_rate(name, value, "lrs") for name, value in lrs.items()}
    raise TypeError(
        f"lrs must be None, a number, a dict parameter name -> lr or a torch optimizer; received {type(lrs).__name__}."
    )


def pair_rates(pair: BalancePair, rates: Mapping[str, float] | None) -> PairRates | None:
    """The rates of one pair's parameters, or ``None`` when they are all equal (plain form).

    Args:
        pair: The layer (or attention head) pair.
        rates: ``parameter name -> lr`` (``None`` or empty: equal rates).

    Returns:
        The pair's rates, or ``None`` when the plain form applies.

    Raises:
        ValueError: When ``rates`` is non-empty but lacks one of the pair's parameters.
    """
    if not rates:
        return None
    missing = [name for name in pair.parameter_names if name not in rates]
    if missing:
        raise ValueError(
            f"No learning rate for {missing} (pair {pair.name}); expected a rate for every parameter of the pair. "
            "Add them to lrs / to a param group of the optimizer, or leave the pair out with pairs=[...]."
        )
    values = {rates[name] for name in pair.parameter_names}
    if len(values) == 1:
        return None
    return PairRates(
        in_weight=rates[pair.in_weight],
        in_bias=rates[pair.in_bias] if pair.in_bias is not None else None,
        out_weight=rates[pair.out_weight],
        out_bias=rates[pair.out_bias] if pair.out_bias is not None else None,
    )
