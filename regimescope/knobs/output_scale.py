"""The output-scale knob: train ``alpha f`` or Chizat's centred ``alpha (f - f_0)`` instead of ``f``.

What theory says (Chizat, Oyallon & Bach 2019; theory.md section 6.4): training ``alpha (f - f_0)`` on the loss
divided by ``alpha^2`` leaves the function's dynamics unchanged at leading order while every parameter moves
``~ 1 / alpha``, so the kernel's relative change is ``~ 1 / alpha``: large ``alpha`` is lazy (the network trains as
its linearisation), small ``alpha`` is rich. Subtracting ``f_0`` (a frozen copy of the initial network) makes the
initial function exactly zero, so every ``alpha`` faces the same task; without centring the initial function is
scaled too, and a large ``alpha f_0`` dwarfs the targets. The NTK of ``alpha f`` is ``alpha^2`` times that of ``f``:
divide the loss (or, for plain SGD, the learning rate) by ``alpha^2`` to train at the same speed.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from regimescope.knobs.selection import working_copy


class OutputScaled(nn.Module):
    """``alpha f(x)``, or ``alpha (f(x) - f_0(x))`` with ``f_0`` a frozen copy of ``f`` at construction.

    The wrapped model takes one input (a tensor, or one object its ``forward`` takes). The frozen copy ``initial``
    holds parameters with ``requires_grad=False`` (optimizers skip them, the monitor
    leaves them out of the kernel); it runs in the wrapper's train/eval mode, like the trained network.

    Args:
        model: The network ``f`` (used as is: pass a copy, as :func:`scale_output` does).
        alpha: Output scale ``alpha > 0``.
        centred: Subtract the initial function.

    Attributes:
        model: The trained network ``f``.
        initial: The frozen ``f_0`` (``None`` when not centred).
        alpha: The output scale.
    """

    def __init__(self, model: nn.Module, alpha: float, centred: bool = False) -> None:
        super().__init__()
        if not (isinstance(alpha, (int, float)) and 0 < alpha < math.inf):
            raise ValueError(f"`alpha` must be a positive finite number; received {alpha!r}.")
        self.model = model
        self.initial = copy.deepcopy(model).requires_grad_(False) if centred else None
        self.alpha = float(alpha)

    @property
    def loss_scale(self) -> float:
        """``1 / alpha^2``: multiply the loss by it to train at the speed of the unscaled network."""
        return self.alpha**-2

    def forward(self, x: Any) -> torch.Tensor:
        """``alpha (f(x) - f_0(x))`` (or ``alpha f(x)``); one input, so that ``torch.fx`` can trace the wrapper (the
        monitor finds the layer pairs inside it).

        Raises:
            TypeError: When ``f`` does not return a tensor.
        """
        output = self.model(x)
        if not isinstance(output, (torch.Tensor, torch.fx.Proxy)):  # a Proxy while torch.fx traces the wrapper
            raise TypeError(
                f"The output-scale knob needs a model returning a tensor; it returned {type(output).__name__}. "
                "Wrap the model so that it returns the output tensor (e.g. the logits)."
            )
        if self.initial is not None:
            output = output - self.initial(x)
        return self.alpha * output

    def extra_repr(self) -> str:
        """Show ``alpha`` and whether the output is centred."""
        return f"alpha={self.alpha:.4g}, centred={self.initial is not None}"


def scale_output(model: nn.Module, alpha: float, *, centred: bool = False) -> OutputScaled:
    """A copy of ``model`` whose output is multiplied by ``alpha`` (and centred on the initial output if asked).

    Parameter names gain the prefix ``model.`` (the wrapped copy). See the module docstring for what ``alpha`` does
    to the regime and how to keep the training speed.

    Args:
        model: The model at initialisation (not changed).
        alpha: Output scale ``alpha > 0``: large is lazy, small is rich.
        centred: Train ``alpha (f - f_0)`` (Chizat et al.'s symmetrised start: the initial function is zero).

    Returns:
        The wrapped copy.

    Raises:
        ValueError: When ``alpha`` is not a positive finite number.
    """
    return OutputScaled(working_copy(model), alpha, centred)
