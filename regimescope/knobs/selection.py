"""Which parameters a knob touches, and the copy every knob works on (never the model being trained)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn


def working_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` for a knob to change (parameters, buffers, hooks and mode flags are copied).

    Knobs build a new model from the one they are given: the original, which may be training elsewhere, keeps its
    parameters, gradients, buffers and hooks, and the random state is not drawn from.

    Raises:
        TypeError: When ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; received {type(model).__name__}.")
    return copy.deepcopy(model)


def module_factors(model: nn.Module, factor: float | Mapping[str, float], argument: str) -> dict[str, float]:
    """``parameter name -> factor`` for the trainable parameters a knob scales.

    A number applies to every trainable parameter; a mapping ``module name -> factor`` applies each factor to the
    parameters of that module and its submodules (``""`` is the whole model; the longest matching name wins, so
    ``{"": 0.5, "head": 2.0}`` scales everything by 0.5 except the head).

    Args:
        model: The model.
        factor: A positive number or a mapping of module names to positive numbers.
        argument: The argument's name, for error messages.

    Raises:
        ValueError: For a factor that is not a positive finite number, or a name that is no module of the model.
    """
    factors = {"": factor} if not isinstance(factor, Mapping) else dict(factor)
    modules = dict(model.named_modules())
    for name, value in factors.items():
        if name not in modules:
            candidates = [n for n in modules if n][:12]
            raise ValueError(
                f"`{argument}` names module {name!r}, which the model does not have; expected names as in "
                f"model.named_modules(), e.g. {candidates}."
            )
        if not (isinstance(value, (int, float)) and 0 < float(value) < float("inf")):
            raise ValueError(
                f"`{argument}` for {name or 'the model'!r} must be a positive finite number; received {value!r}."
            )
    chosen = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        owners = [m for m in factors if m == "" or name.startswith(f"{m}.")]
        if owners:
            chosen[name] = float(factors[max(owners, key=len)])
    return chosen


def scale_parameters(model: nn.Module, factors: Mapping[str, float]) -> None:
    """Multiply parameters of ``model`` (a working copy) in place by their factors, without recording gradients."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in factors.items():
            params[name].mul_(value)
