"""The initialisation-scale knob: multiply a model's initial parameters, globally or per layer.

What theory says (theory.md sections 4 and 6; Chizat, Oyallon & Bach 2019; Kunin et al. 2024):

- A network of ``L`` positively homogeneous layers without biases satisfies ``f(c theta) = c^L f(theta)``, so scaling
  every parameter by ``c`` multiplies the initial function by ``c^L`` and the NTK by ``c^(2L - 2)``.
- Small ``c`` (small initialisation) is rich: to fit the targets the weights must grow, and the kernel grows with
  them by orders of magnitude and turns (the balanced minimal model, diagonal nets with small ``alpha``, GRQ's small
  ``tau``). Large ``c`` is lazy: the kernel already fits the targets with a relative change of order ``c^-L``
  (Chizat's output-scale argument, since a large initialisation is a large output scale when ``f_0`` is small).
- Per layer, the scale sets the layer balance too: shrinking the first layer of a two-layer net makes it upstream
  (``delta_k > 0``: fast feature learning), shrinking the readout makes it downstream (fixed features first);
  :func:`~regimescope.knobs.balance.rebalance` moves the balance at a fixed product instead.
- Training speed follows the kernel: to compare runs at equal speed keep ``lr * lambda_max(K)`` fixed, i.e. scale the
  learning rate by ``c^-(2L - 2)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from regimescope.knobs.selection import module_factors, scale_parameters, working_copy


def scale_init(model: nn.Module, factor: float | Mapping[str, float], *, biases: bool = True) -> nn.Module:
    """A copy of ``model`` whose trainable parameters are multiplied by ``factor``.

    Call it on a freshly built model (its initialisation); ``model`` itself is not changed.

    Args:
        model: The model at initialisation.
        factor: ``c > 0`` for every trainable parameter, or ``{module name: c}`` per layer (a module's factor
            applies to its submodules; the longest matching name wins; ``""`` is the whole model).
        biases: Scale biases (parameters named ``bias``) too. With ``False`` only the weights are scaled, which
            keeps ``f(c theta) = c^L f(theta)`` exact for homogeneous networks with zero-initialised biases.

    Returns:
        The rescaled copy.

    Raises:
        ValueError: For a factor that is not positive and finite, or a module name the model does not have.
    """
    copied = working_copy(model)
    factors = module_factors(copied, factor, "factor")
    if not biases:
        factors = {name: value for name, value in factors.items() if name.rsplit(".", 1)[-1] != "bias"}
    scale_parameters(copied, factors)
    return copied
