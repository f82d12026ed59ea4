"""The knobs a sweep applies itself to the model a factory builds (any other grid key is a factory argument)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from regimescope.knobs import rebalance, scale_init, scale_output


@dataclass(frozen=True)
class BuiltinKnob:
    """A knob applied to the built model.

    Attributes:
        apply: ``(model, value) -> new model`` (a copy).
        meaning: What the value means, for documentation and the report.
    """

    apply: Callable[[nn.Module, float], nn.Module]
    meaning: str


BUILTIN_KNOBS: dict[str, BuiltinKnob] = {
    "init_scale": BuiltinKnob(
        lambda model, value: scale_init(model, float(value)),
        "every initial parameter multiplied by the value (smaller is richer)",
    ),
    "balance": BuiltinKnob(
        lambda model, value: rebalance(model, rho=float(value)),
        "normalised layer balance rho of every hidden unit at a fixed product (+ upstream, - downstream)",
    ),
    "delta": BuiltinKnob(
        lambda model, value: rebalance(model, delta=float(value)),
        "layer balance delta = |a|^2 - |w|^2 - b^2 of every hidden unit at a fixed product",
    ),
    "output_scale": BuiltinKnob(
        lambda model, value: scale_output(model, float(value), centred=True),
        "output alpha (f - f_0), Chizat's centred output scale (larger is lazier)",
    ),
}
"""Applied in this order after the factory (``init_scale`` before the balance, so that ``delta`` is absolute)."""

PARAMETRISATION = "parametrisation"
"""The grid key choosing ``"standard"``, ``"ntk"`` or ``"mup"`` (:func:`regimescope.knobs.at_width`); it needs a
``width`` key, which the model factory receives."""
WIDTH = "width"
