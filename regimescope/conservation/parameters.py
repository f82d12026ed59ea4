"""Which parameters carry a pair's units, and whether the per-unit rescaling symmetry reaches them.

``delta_k`` is the Noether charge of ``(w_k, b_k, a_k) -> (c w_k, c b_k, a_k / c)`` (theory.md section 2): it is
conserved only when gradient flow trains those tensors directly and nothing else depends on them. Three things in
a real model change that:

- **Frozen** parameters (``requires_grad=False``) do not follow the flow.
- **Tied** parameters (one ``nn.Parameter`` under several module names): rescaling unit ``k`` also rescales the
  other use, so the symmetry is lost.
- **Parametrized** weights (``torch.nn.utils.parametrize`` and the legacy ``nn.utils.weight_norm``/
  ``spectral_norm`` hooks): the layer's weight is computed, not trained. Weight normalisation per unit,
  ``w_k = g_k v_k / |v_k|``, keeps a symmetry on the incoming side: ``(g_k, b_k, a_k) -> (c g_k, c b_k, a_k / c)``
  leaves the model unchanged, so ``delta_k = |a_k|^2 - g_k^2 - b_k^2`` is conserved (``v_k`` is scale-invariant:
  its gradient is orthogonal to it and ``|v_k|^2`` is conserved on its own). ``spectral_norm`` and ``orthogonal``
  fix the weight's scale, and a weight-normed outgoing layer normalises the rows that mix the units: no per-unit
  rescaling survives, such a pair has no balance. A parametrization regimescope does not know may or may not keep
  one; its pairs get no balance either, with a reason that says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

NORMALISING = frozenset({"_WeightNorm", "_SpectralNorm", "_Orthogonal", "legacy WeightNorm", "legacy SpectralNorm"})
"""Parametrizations known to normalise the weight they compute (its rows, its spectrum, its columns)."""


def holds_tensor(module: nn.Module, tensor: str) -> bool:
    """Whether ``module.<tensor>`` is a tensor (``in_proj_weight``, ``bias``, ...), found without running a
    parametrization on ``module``: reading a parametrized attribute computes it (``spectral_norm`` then moves its
    power-iteration buffers), so a parametrized name is taken from the parametrization's registry instead."""
    return parametrize.is_parametrized(module, tensor) or isinstance(getattr(module, tensor, None), torch.Tensor)


@dataclass(frozen=True)
class ParameterIndex:
    """Every name of every parameter of a model, the names of tied parameters included.

    Attributes:
        parameters: ``name -> parameter`` over ``model.named_parameters(remove_duplicate=False)``.
        names: ``id(parameter) -> every name it has``.
    """

    parameters: dict[str, nn.Parameter]
    names: dict[int, tuple[str, ...]]

    @classmethod
    def of(cls, model: nn.Module) -> ParameterIndex:
        """Index ``model``'s parameters (metadata only: no tensor is read)."""
        parameters = dict(model.named_parameters(remove_duplicate=False))
        names: dict[int, list[str]] = {}
        for name, parameter in parameters.items():
            names.setdefault(id(parameter), []).append(name)
        return cls(parameters, {key: tuple(value) for key, value in names.items()})

    def aliases(self, name: str) -> tuple[str, ...]:
        """The other names of the parameter called ``name`` (empty when it is not tied)."""
        parameter = self.parameters.get(name)
        return () if parameter is None else tuple(n for n in self.names[id(parameter)] if n != name)


def _legacy_hook(module: nn.Module, tensor: str) -> object | None:
    """The legacy ``weight_norm``/``spectral_norm`` forward pre-hook computing ``module.<tensor>``, if any."""
    kinds = tuple(
        getattr(sys.modules.get(f"torch.nn.utils.{name}"), cls, None)
        for name, cls in (("weight_norm", "WeightNorm"), ("spectral_norm", "SpectralNorm"))
    )
    kinds = tuple(kind for kind in kinds if kind is not None)
    for hook in module._forward_pre_hooks.values():
        if kinds and isinstance(hook, kinds) and getattr(hook, "name", None) == tensor:
            return hook
    return None


def _computed_by(module: nn.Module, tensor: str) -> tuple[str, ...]:
    """The parametrizations computing ``module.<tensor>`` (e.g. ``("_SpectralNorm",)``, ``("legacy WeightNorm",)``),
    empty when the tensor is an ordinary parameter."""
    if parametrize.is_parametrized(module, tensor):
        return tuple(type(step).__name__ for step in module.parametrizations[tensor])
    hook = _legacy_hook(module, tensor)
    return () if hook is None else (f"legacy {type(hook).__name__}",)


def computed_reason(module: nn.Module, qualified: str, tensor: str, role: str = "") -> str:
    """Why a pair reading ``module.<tensor>`` (qualified name ``qualified``) has no balance because a
    parametrization computes it; empty when the tensor is an ordinary parameter.

    Args:
        module: The module holding the tensor.
        qualified: The tensor's qualified name, for the message.
        tensor: Its attribute name on ``module``.
        role: ``"incoming"``/``"outgoing"`` (or empty), for the message.
    """
    steps = _computed_by(module, tensor)
    if not steps:
        return ""
    label = f"the {role} {qualified}" if role else qualified
    how = " + ".join(steps)
    if set(steps) <= NORMALISING:
        return (
            f"{label} is computed by the parametrization {how}, which normalises it: no per-unit rescaling leaves "
            "the model unchanged, so the pair has no balance"
        )
    return (
        f"{label} is computed by the parametrization {how}, unknown to regimescope: whether a per-unit rescaling "
        "survives it is not known, so the pair gets no balance"
    )


def _magnitude(module: nn.Module, module_name: str, units: int, index: ParameterIndex) -> str | None:
    """The per-unit weight-norm magnitude ``g`` of ``module``'s weight (``units`` entries, one per output), or
    ``None`` when the weight is computed some other way."""
    prefix = f"{module_name}." if module_name else ""
    if parametrize.is_parametrized(module, "weight"):
        chain = module.parametrizations["weight"]
        if len(chain) != 1 or type(chain[0]).__name__ != "_WeightNorm":
            return None
        name = f"{prefix}parametrizations.weight.original0"
    elif type(_legacy_hook(module, "weight")).__name__ == "WeightNorm":
        name = f"{prefix}weight_g"
    else:
        return None
    g = index.parameters.get(name)
    return name if g is not None and g.numel() == units and g.shape[0] == units else None


def incoming_weight(
    module: nn.Module, module_name: str, units: int, index: ParameterIndex
) -> tuple[str | None, str]:
    """The parameter holding unit ``k``'s incoming weight, and why there is none.

    Args:
        module: The incoming layer.
        module_name: Its qualified name.
        units: Its output units.
        index: The model's parameters.

    Returns:
        ``(name, "")``: ``<module>.weight``, or the magnitude ``g`` of a per-unit weight-normed layer; or
        ``(None, reason)`` when a parametrization leaves no per-unit rescaling (or one regimescope cannot vouch for).
    """
    prefix = f"{module_name}." if module_name else ""
    reason = computed_reason(module, f"{prefix}weight", "weight", "incoming")
    if not reason:
        return f"{prefix}weight", ""
    magnitude = _magnitude(module, module_name, units, index)
    return (magnitude, "") if magnitude is not None else (None, reason)


def symmetry_reasons(index: ParameterIndex, names: tuple[str, ...], symmetry: str) -> tuple[list[str], bool, bool]:
    """Why the parameters ``names`` of a pair break its rescaling symmetry: frozen or tied ones.

    Args:
        index: The model's parameters.
        names: The pair's parameter names.
        symmetry: What the symmetry rescales, for the message (e.g. ``"the rescaling symmetry"``).

    Returns:
        ``(reasons, frozen, tied)``.
    """
    present = [name for name in names if name in index.parameters]
    frozen = [name for name in present if not index.parameters[name].requires_grad]
    reasons = []
    if frozen:
        reasons.append(
            f"{', '.join(frozen)} {'is' if len(frozen) == 1 else 'are'} frozen (requires_grad=False): {symmetry} "
            "needs both sides to train, so delta_k does not follow training (BalanceIndicator skips this pair)"
        )
    tied = [(name, index.aliases(name)) for name in present if index.aliases(name)]
    for name, aliases in tied:
        reasons.append(
            f"{name} is the same Parameter as {', '.join(aliases)} (tied weights): rescaling a unit also changes that "
            "other use, so delta_k is not conserved"
        )
    return reasons, bool(frozen), bool(tied)
