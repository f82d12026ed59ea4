"""Gradient flows of the solvable models integrated numerically (classical RK4): the reference for the closed forms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rk4(field: Callable[[np.ndarray], np.ndarray], start: np.ndarray, time: float, steps: int) -> np.ndarray:
    """Integrate ``dy/dt = field(y)`` from ``start`` over ``[0, time]`` with ``steps`` RK4 steps."""
    y, h = np.asarray(start, dtype=np.float64), time / steps
    for _ in range(steps):
        k1 = field(y)
        k2 = field(y + h / 2 * k1)
        k3 = field(y + h / 2 * k2)
        k4 = field(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def minimal_flow(beta_star: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Unit-rate gradient flow of ``|a w - beta*|^2 / 2`` on ``y = (a, w)``."""

    def field(y: np.ndarray) -> np.ndarray:
        a, w = y[0], y[1:]
        residual = a * w - beta_star
        return np.concatenate([[-w @ residual], -a * residual])

    return field


def two_layer_flow(x: np.ndarray, y: np.ndarray, h: int) -> Callable[[np.ndarray], np.ndarray]:
    """Unit-rate gradient flow of ``|W_2 W_1 X - Y|_F^2 / (2P)`` on ``(vec W_1, vec W_2)`` (inputs as rows)."""
    samples, d = x.shape
    outputs = y.shape[1]

    def field(state: np.ndarray) -> np.ndarray:
        w_1 = state[: h * d].reshape(h, d)
        w_2 = state[h * d :].reshape(outputs, h)
        gradient = (w_2 @ w_1 @ x.T - y.T) @ x / samples
        return np.concatenate([(-w_2.T @ gradient).ravel(), (-gradient @ w_1.T).ravel()])

    return field
