"""The width knob: build a model at a width under the standard, NTK or maximal-update (muP) parametrisation.

A parametrisation says how initial scales and effective learning rates change with the width ``m``. For plain SGD
(Yang & Hu 2021, "Tensor Programs IV"; theory.md section 6.3), relative to a base width ``m_0`` with
``r = m / m_0`` for each dimension that grows with the width:

| layer (dimensions that grow) | standard | NTK | muP |
| --- | --- | --- | --- |
| input (fan-out) | as built | as built | init ``/ sqrt(r)``, multiplier ``sqrt(r)`` (rate ``x r``) |
| hidden (fan-in and fan-out) | as built | init ``x sqrt(r)``, multiplier ``1 / sqrt(r)`` (rate ``/ r``) | as built |
| output (fan-in) | as built | init ``x sqrt(r)``, multiplier ``1 / sqrt(r)`` (rate ``/ r``) | multiplier ``1 / sqrt(r)`` (init ``/ r``, rate ``/ r``) |

A multiplier ``c`` makes a layer compute with ``c W`` (its input is multiplied by ``c`` before the layer), so plain
SGD with one learning rate trains every parametrisation: the effective initial weights are those in brackets and
the effective rate of ``c W`` is ``c^2`` times the optimizer's. At ``m = m_0`` every parametrisation is the model
as built.

What theory says: in the NTK parametrisation (and the standard one at its largest stable rate, which falls as
``1 / m``) relative weight changes fall as ``m^-1/2`` and the kernel freezes: wider is lazier, and the infinite-width
limit is the kernel regime. Under muP every layer's features move by ``Theta(1)`` at every width (the mean-field
limit of two-layer nets): width does not make training lazier, and the best hyperparameters transfer across widths.

Only ``Linear`` and ``Conv`` weights are reparametrised; biases and norm affines keep their own scale and rate (for
bias-free networks the table is exact; hidden biases then learn at NTK speed under muP). Other parameters that grow
with the width (embeddings, raw attention matrices) are refused with the fix.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from regimescope.conservation.pairs import LAYER_TYPES

logger = logging.getLogger(__name__)


class Parametrisation(enum.Enum):
    """How scales and rates change with width (see the module docstring)."""

    STANDARD = "standard"
    """The model as the factory builds it, one learning rate (PyTorch's default init: variance ``~ 1 / fan_in``)."""
    NTK = "ntk"
    """Neural-tangent parametrisation: hidden and output layers get ``1 / sqrt(fan_in)`` multipliers; lazy as ``m``
    grows."""
    MUP = "mup"
    """Maximal-update parametrisation for SGD: features move at every width; hyperparameters transfer."""


class InputMultiplier:
    """A forward pre-hook multiplying a layer's input by a constant, so that the layer computes with ``c W``.

    Registered on ``Linear``/``Conv`` modules by :func:`at_width`; it is part of the model (copied with it), and the
    NTK, the balance and the optimizer all see the raw weight ``W`` with the multiplier folded into the function.

    Attributes:
        factor: ``c``.
    """

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Multiply the first positional input by ``c``."""
        return (args[0] * self.factor, *args[1:])

    def __repr__(self) -> str:
        return f"InputMultiplier({self.factor:.6g})"


def multipliers(model: nn.Module) -> dict[str, float]:
    """``module name -> c`` of every :class:`InputMultiplier` on ``model``."""
    found = {}
    for name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, InputMultiplier):
                found[name] = found.get(name, 1.0) * hook.factor
    return found


def _parse(parametrisation: Parametrisation | str) -> Parametrisation:
    try:
        return Parametrisation(parametrisation)
    except ValueError as error:
        raise ValueError(
            f"`parametrisation` must be one of {[p.value for p in Parametrisation]}; received {parametrisation!r}."
        ) from error


def _base_shapes(make_model: Callable[[int], nn.Module], base_width: int) -> dict[str, torch.Size]:
    """Parameter shapes of the model at ``base_width``, built on the meta device when the factory allows it."""
    try:
        with torch.device("meta"):
            base = make_model(base_width)
    except Exception as error:  # a factory drawing from a CPU generator cannot build on meta: build it for real
        logger.debug("meta build of the base model failed (%s); building it on the CPU", error)
        with torch.random.fork_rng(devices=[]):
            base = make_model(base_width)
    return {name: param.shape for name, param in base.named_parameters()}


def _factors(kind: Parametrisation, fan_out: float, fan_in: float) -> tuple[float, float]:
    """``(init factor, multiplier)`` of a weight whose fan-out and fan-in grew by ``fan_out`` and ``fan_in``."""
    grows_out, grows_in = fan_out != 1, fan_in != 1
    if kind is Parametrisation.NTK and grows_in:
        return math.sqrt(fan_in), 1 / math.sqrt(fan_in)
    if kind is Parametrisation.MUP and grows_out and not grows_in:
        return 1 / math.sqrt(fan_out), math.sqrt(fan_out)
    if kind is Parametrisation.MUP and grows_in and not grows_out:
        return 1.0, 1 / math.sqrt(fan_in)
    return 1.0, 1.0


def at_width(
    make_model: Callable[[int], nn.Module],
    width: int,
    parametrisation: Parametrisation | str = Parametrisation.STANDARD,
    *,
    base_width: int | None = None,
) -> nn.Module:
    """Build ``make_model(width)`` under a parametrisation, relative to the model at ``base_width``.

    The dimensions that grow with the width are found by comparing parameter shapes with ``make_model(base_width)``
    (built on the meta device when the factory allows, so it costs nothing), as ``mup``'s base shapes do. Each
    ``Linear``/``Conv`` weight is then rescaled and given an :class:`InputMultiplier` by the table of the module
    docstring.

    Args:
        make_model: Builds the model at a width: ``make_model(width) -> nn.Module``.
        width: The width ``m``.
        parametrisation: ``"standard"``, ``"ntk"`` or ``"mup"``.
        base_width: The width ``m_0`` at which every parametrisation is the model as built (the width your
            hyperparameters were tuned at); required for ``"ntk"`` and ``"mup"``.

    Returns:
        The model (a new one: the factory builds it).

    Raises:
        ValueError: For an unknown parametrisation, a non-positive width, a missing ``base_width``, parameters that differ between the two
            widths in name or number of dimensions, or a parameter other than a ``Linear``/``Conv`` weight that
            grows with the width under NTK or muP.
    """
    kind = _parse(parametrisation)
    for name, value in (("width", width), ("base_width", base_width)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    if kind is not Parametrisation.STANDARD and base_width is None:
        raise ValueError(
            f"The {kind.value} parametrisation is relative to a base width; pass `base_width=` (the width at which "
            "the model as built is the reference, e.g. the width your learning rate was tuned at)."
        )
    model = make_model(width)
    if kind is Parametrisation.STANDARD or base_width == width:
        return model
    base = _base_shapes(make_model, base_width)
    params = dict(model.named_parameters())
    if set(base) != set(params):
        raise ValueError(
            f"make_model({width}) and make_model({base_width}) have different parameters ({sorted(set(base) ^ set(params))[:6]}); "
            "the factory must build the same layers at every width."
        )
    layers = {f"{name}.weight": module for name, module in model.named_modules() if isinstance(module, LAYER_TYPES)}
    for name, param in params.items():
        shape, old = param.shape, base[name]
        if len(shape) != len(old):
            raise ValueError(
                f"Parameter {name} has {len(shape)} dimensions at width {width} but {len(old)} at {base_width}."
            )
        grown = [new / before for new, before in zip(shape, old)]
        if all(g == 1 for g in grown) or name.rsplit(".", 1)[-1] == "bias" or len(shape) == 1:
            continue
        if name not in layers:
            raise ValueError(
                f"Parameter {name} grows with the width ({tuple(old)} -> {tuple(shape)}) but is not a Linear/Conv "
                f"weight, so the {kind.value} parametrisation does not know its role. Use the standard "
                "parametrisation, or the `mup` package (MuReadout, set_base_shapes) for such models."
            )
        init, multiplier = _factors(kind, grown[0], grown[1])
        if init != 1:
            with torch.no_grad():
                param.mul_(init)
        if multiplier != 1:
            layers[name].register_forward_pre_hook(InputMultiplier(multiplier))
    return model
