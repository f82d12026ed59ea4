"""The small networks whose regime theory knows (theory.md sections 4 and 6), as ``nn.Module`` builders.

Every builder returns a float64 model with the initialisation written in, so a scenario is fully determined by
its arguments and leaves the global random state alone.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn


def _write(layer: nn.Linear, weight: np.ndarray) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype).reshape(layer.weight.shape))


def minimal_model(a_0: float, w_0: np.ndarray) -> nn.Sequential:
    """``f(x) = a w^T x`` as ``Linear(d, 1) -> Linear(1, 1)`` without biases (theory.md section 2).

    Args:
        a_0: Output weight ``a``.
        w_0: Input weights ``w``, ``(d,)``.

    Returns:
        The model; its layer pair ``0-1`` has the conserved ``delta = a^2 - |w|^2``.
    """
    w_0 = np.asarray(w_0, dtype=np.float64).reshape(-1)
    model = nn.Sequential(nn.Linear(w_0.size, 1, bias=False), nn.Linear(1, 1, bias=False)).double()
    _write(model[0], w_0)
    _write(model[1], np.array([[a_0]]))
    return model


def two_layer_linear(w_1: np.ndarray, w_2: np.ndarray) -> nn.Sequential:
    """``f(x) = W_2 W_1 x`` as two bias-free ``Linear`` layers (theory.md section 4, lambda-balanced nets).

    Args:
        w_1: ``(h, d)`` first-layer weights.
        w_2: ``(o, h)`` second-layer weights.

    Returns:
        The model.
    """
    (h, d), o = w_1.shape, w_2.shape[0]
    model = nn.Sequential(nn.Linear(d, h, bias=False), nn.Linear(h, o, bias=False)).double()
    _write(model[0], w_1)
    _write(model[1], w_2)
    return model


class NTKTwoLayer(nn.Module):
    """NTK-parametrised two-layer network ``f(x) = m^{-1/2} sum_k a_k sigma(w_k^T x / sqrt(d))`` (theory.md 6.3).

    Weights are standard Gaussian, so the NTK has a width-independent limit and training becomes lazier as the
    width ``m`` grows: relative weight change and ReLU flip fraction ``~ m^{-1/2}``.

    Args:
        d: Input dimension.
        width: Hidden units ``m``.
        activation: The activation module (``nn.ReLU()``, ``nn.Tanh()``, ...).
        seed: Seed of the Gaussian weights.
    """

    def __init__(self, d: int, width: int, activation: nn.Module, seed: int = 0) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, width, bias=False, dtype=torch.float64)
        self.activation = activation
        self.readout = nn.Linear(width, 1, bias=False, dtype=torch.float64)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(width, d, generator=generator, dtype=torch.float64))
            self.readout.weight.copy_(torch.randn(1, width, generator=generator, dtype=torch.float64))
        self.input_scale = d**-0.5
        self.output_scale = width**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, d) -> (n, 1)``."""
        return self.output_scale * self.readout(self.activation(self.hidden(self.input_scale * x)))


class CentredScaled(nn.Module):
    """``f_alpha(x) = alpha (g(x) - g_0(x))``: Chizat et al.'s output scale with the initial function removed.

    ``g_0`` is a frozen copy of ``g`` at construction, so ``f_alpha = 0`` at initialisation whatever ``alpha``.
    Trained on ``loss / alpha^2``, the function's dynamics do not depend on ``alpha`` at leading order while the
    parameters move ``~ 1 / alpha``: large ``alpha`` is lazy (theory.md 6.4).

    Args:
        net: The network ``g`` (trained).
        alpha: Output scale ``alpha > 0``.
    """

    def __init__(self, net: nn.Module, alpha: float) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; received {alpha}.")
        self.net = net
        self.initial = copy.deepcopy(net).requires_grad_(False)
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``alpha (g(x) - g_0(x))``."""
        return self.alpha * (self.net(x) - self.initial(x))


class DiagonalLinear(nn.Module):
    """Diagonal linear network ``f(x) = (u * u - v * v)^T x`` from ``u = v = alpha 1`` (Woodworth et al. 2020).

    ``beta = u * u - v * v = 0`` at initialisation. The NTK is ``4 x^T diag(u^2 + v^2) x'``: from small ``alpha`` it
    grows by orders of magnitude on the coordinates of a sparse solution (rich, ``l1``-like implicit bias); from
    large ``alpha`` it stays ``8 alpha^2 x^T x'`` (lazy, ``l2`` solution). Theory.md 6.5.

    Args:
        d: Input dimension.
        alpha: Initial scale.
    """

    def __init__(self, d: int, alpha: float) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.full((d,), float(alpha), dtype=torch.float64))
        self.v = nn.Parameter(torch.full((d,), float(alpha), dtype=torch.float64))

    @property
    def beta(self) -> torch.Tensor:
        """The linear predictor ``u * u - v * v``."""
        return self.u * self.u - self.v * self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, d) -> (n, 1)``."""
        return (x @ self.beta)[:, None]


def whitened_inputs(n: int, d: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """``(n, d)`` inputs with ``X^T X = scale * I`` (orthonormal columns times ``sqrt(scale)``), ``n >= d``."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, d)))
    return q * np.sign(np.diag(r)) * math.sqrt(scale)
