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
  its gradient is orthogonal to it and ``|v_k|^2`` is conserved on its own). Every other parametrization
  (``spectral_norm`` and ``orthogonal`` fix the weight's scale; a weight-normed outgoing layer normalises the rows
  that mix the units) has no per-unit rescaling, so such a pair has no balance.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import parametrize

NO_SYMMETRY = "so no per-unit rescaling leaves the model unchanged and the pair has no balance"
"""The end of the reason of a pair whose weights a parametrization computes."""


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


def computed_by(module: nn.Module, tensor: str) -> str | None:
    """The parametrization computing ``module.<tensor>`` (e.g. ``"_SpectralNorm"``, ``"legacy WeightNorm"``), or
    ``None`` when the tensor is an ordinary parameter."""
    if parametrize.is_parametrized(module, tensor):
        chain = module.parametrizations[tensor]
        return " + ".join(type(step).__name__ for step in chain)
    hook = _legacy_hook(module, tensor)
    return None if hook is None else f"legacy {type(hook).__name__}"


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
        ``(None, reason)`` when a parametrization leaves no per-unit rescaling.
    """
    prefix = f"{module_name}." if module_name else ""
    how = computed_by(module, "weight")
    if how is None:
        return f"{prefix}weight", ""
    magnitude = _magnitude(module, module_name, units, index)
    if magnitude is not None:
        return magnitude, ""
    return None, f"{prefix}weight is computed by the parametrization {how}, {NO_SYMMETRY}"


def computed_reason(module: nn.Module, module_name: str, tensors: tuple[str, ...], role: str) -> str:
    """Why ``module``'s ``tensors`` cannot carry a balance because a parametrization computes one ("" if none does).

    Args:
        module: The layer.
        module_name: Its qualified name.
        tensors: Its tensors the pair reads on this side (``("weight",)``, ``("bias",)``).
        role: ``"incoming"`` or ``"outgoing"``, for the message.
    """
    prefix = f"{module_name}." if module_name else ""
    for tensor in tensors:
        how = computed_by(module, tensor)
        if how is not None:
            return f"the {role} {prefix}{tensor} is computed by the parametrization {how}, {NO_SYMMETRY}"
    return ""


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
