"""Exact gradient flow of lambda-balanced two-layer linear networks (Dominé et al. 2025; theory.md section 4).

The network ``f(x) = W_2 W_1 x`` (``W_1``: ``h x d``, ``W_2``: ``o x h``) is trained on
``L = |W_2 W_1 X - Y|_F^2 / (2P)`` over ``P`` whitened inputs (``X X^T / P = I``, inputs as columns) with rate
``eta = 1 / tau``. When the initialisation is lambda-balanced, ``W_2^T W_2 - W_1 W_1^T = lambda I``, the Gram
matrix of ``Q = [W_1^T; W_2]`` solves the Riccati equation

    tau d(QQ^T)/dt = F QQ^T + QQ^T F - (QQ^T)^2,    F = [[-(lambda/2) I_d, S^T], [S, (lambda/2) I_o]],

``S = Y X^T / P``, solved by

    QQ^T(t) = e^{F t/tau} Q_0 [I_h + Q_0^T G(t/tau) Q_0]^{-1} Q_0^T e^{F t/tau},    G(s) = int_0^s e^{2 F r} dr,

``G`` being the upper-right block of ``expm([[2F, I], [0, 0]] s)``. The NTK and the function are linear in the
blocks of ``QQ^T = [[W_1^T W_1, W_1^T W_2^T], [W_2 W_1, W_2 W_2^T]]``:

- full NTK, rows ordered (output, sample): ``K = I_o (x) (X^T W_1^T W_1 X) + (W_2 W_2^T) (x) (X^T X)``;
- trace NTK (summed over outputs): ``K = o X^T W_1^T W_1 X + tr(W_2 W_2^T) X^T X``;
- function: ``W_2 W_1 X``.

Regimes: ``|lambda| -> inf`` with ``N_h = N_i = N_o`` lazy (``S(K_0, K_inf) ~ lambda^-4``); ``lambda = 0`` from small
initialisation rich. Precision is lost once ``2 max eig(F) t / tau`` passes about 30 (the exponentials then swamp
the inverse); :meth:`LambdaBalancedSolution.at` refuses such times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_GROWTH = 30.0
"""Largest ``2 max eig(F) t / tau`` at which the closed form is evaluated (precision is lost beyond)."""


def lambda_balanced_init(
    lam: float, singular_values: np.ndarray, d: int, o: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A lambda-balanced initialisation ``(W_1, W_2)`` with prescribed product singular values (theory.md section 4).

    ``W_1 = R S_1 V^T``, ``W_2 = U S_2 R^T`` with ``R, U, V`` random orthogonal,
    ``S_2^2 = (lambda + sqrt(lambda^2 + 4 sigma^2)) / 2`` and ``S_1^2 = (-lambda + sqrt(lambda^2 + 4 sigma^2)) / 2``,
    so that ``W_2^T W_2 - W_1 W_1^T = lambda I_h`` and ``W_2 W_1`` has singular values ``sigma``.

    Args:
        lam: ``lambda``; ``> 0`` puts the scale in ``W_2`` (upstream), ``< 0`` in ``W_1`` (downstream).
        singular_values: ``sigma_i > 0``, one per hidden unit (``h = len``), ``h <= min(d, o)``.
        d: Input dimension.
        o: Output dimension.
        seed: Seed of the orthogonal matrices.

    Returns:
        ``(W_1, W_2)`` of shapes ``(h, d)`` and ``(o, h)``, float64.

    Raises:
        ValueError: When ``h > min(d, o)`` or a singular value is not positive.
    """
    sigma = np.asarray(singular_values, dtype=np.float64).reshape(-1)
    h = sigma.size
    if h > min(d, o) or not (sigma > 0).all():
        raise ValueError(
            f"Received {h} singular values {sigma} for d = {d}, o = {o}; expected at most min(d, o) positive values."
        )
    rng = np.random.default_rng(seed)

    def orthogonal(n: int) -> np.ndarray:
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        return q * np.sign(np.diag(r))

    root = np.sqrt(lam**2 + 4 * sigma**2)
    if lam >= 0:  # the larger factor from its formula, the smaller as sigma / larger (no cancellation)
        s_2 = np.sqrt((lam + root) / 2)
        s_1 = sigma / s_2
    else:
        s_1 = np.sqrt((-lam + root) / 2)
        s_2 = sigma / s_1
    r, u, v = orthogonal(h), orthogonal(o), orthogonal(d)
    w_1 = r @ (s_1[:, None] * v[:, :h].T)
    w_2 = (u[:, :h] * s_2) @ r.T
    return w_1, w_2


@dataclass(frozen=True)
class LambdaBalancedState:
    """The Gram matrix ``QQ^T`` at one time and what the monitor measures from it.

    Attributes:
        t: Time in units of ``tau`` (``steps * lr`` for gradient descent).
        gram: ``QQ^T``, ``(d + o, d + o)``.
        d: Input dimension.
    """

    t: float
    gram: np.ndarray
    d: int

    @property
    def product(self) -> np.ndarray:
        """``W_2 W_1`` (``o x d``): the lower-left block."""
        return self.gram[self.d :, : self.d]

    @property
    def input_gram(self) -> np.ndarray:
        """``W_1^T W_1`` (``d x d``): the upper-left block."""
        return self.gram[: self.d, : self.d]

    @property
    def output_gram(self) -> np.ndarray:
        """``W_2 W_2^T`` (``o x o``): the lower-right block."""
        return self.gram[self.d :, self.d :]

    def kernel(self, x: np.ndarray) -> np.ndarray:
        """Trace NTK on inputs ``x`` (rows, ``(n, d)``): ``o x W_1^T W_1 x^T + tr(W_2 W_2^T) x x^T``."""
        outputs = self.output_gram.shape[0]
        return outputs * x @ self.input_gram @ x.T + np.trace(self.output_gram) * (x @ x.T)

    def full_kernel(self, x: np.ndarray) -> np.ndarray:
        """Full NTK ``(n, n, o, o)`` on inputs ``x``: ``K[i, j] = (x_i^T W_1^T W_1 x_j) I + (x_i^T x_j) W_2 W_2^T``."""
        outputs = self.output_gram.shape[0]
        first = (x @ self.input_gram @ x.T)[:, :, None, None] * np.eye(outputs)
        return first + (x @ x.T)[:, :, None, None] * self.output_gram

    def function(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(n, o)`` on inputs ``x`` (rows): ``x (W_2 W_1)^T``."""
        return x @ self.product.T


class LambdaBalancedSolution:
    """Closed-form gradient flow of a lambda-balanced two-layer linear network on whitened inputs.

    Args:
        w_1: Initial ``W_1`` (``h x d``).
        w_2: Initial ``W_2`` (``o x h``).
        x: Training inputs as rows, ``(P, d)``, whitened: ``x^T x / P = I``.
        y: Training targets as rows, ``(P, o)``.
        atol: Tolerance of the lambda-balance and whitening checks, relative to the matrices' scale.

    Raises:
        ValueError: When the inputs are not whitened or ``W_2^T W_2 - W_1 W_1^T`` is not a multiple of ``I``.
    """

    def __init__(self, w_1: np.ndarray, w_2: np.ndarray, x: np.ndarray, y: np.ndarray, atol: float = 1e-8) -> None:
        w_1, w_2, x, y = (np.asarray(m, dtype=np.float64) for m in (w_1, w_2, x, y))
        samples, d = x.shape
        if np.abs(x.T @ x / samples - np.eye(d)).max() > atol:
            raise ValueError(
                "x is not whitened: expected x^T x / P = I (inputs as rows). Whiten it, e.g. x = sqrt(P) * Q from a "
                "QR decomposition of a (P, d) matrix."
            )
        balance = w_2.T @ w_2 - w_1 @ w_1.T
        self.lam = float(np.trace(balance)) / balance.shape[0]
        scale = max(np.abs(balance).max(), np.abs(w_1).max() ** 2, np.abs(w_2).max() ** 2)
        if np.abs(balance - self.lam * np.eye(balance.shape[0])).max() > atol * scale:
            raise ValueError(
                "The initialisation is not lambda-balanced: W_2^T W_2 - W_1 W_1^T is not a multiple of I. Build it "
                "with lambda_balanced_init (theory.md section 4)."
            )
        self.d = d
        self.outputs = w_2.shape[0]
        q_0 = np.concatenate([w_1.T, w_2], axis=0)
        self.q_0 = q_0
        target = y.T @ x / samples
        self.f = np.block([[-self.lam / 2 * np.eye(d), target.T], [target, self.lam / 2 * np.eye(self.outputs)]])
        self.max_rate = float(np.linalg.eigvalsh(self.f).max())

    def _expm(self, matrix: np.ndarray) -> np.ndarray:
        return torch.linalg.matrix_exp(torch.from_numpy(matrix)).numpy()

    def at(self, t: float) -> LambdaBalancedState:
        """``QQ^T`` at time ``t`` (in units of ``tau``).

        Raises:
            ValueError: When ``t < 0`` or ``2 max eig(F) t > MAX_GROWTH`` (the closed form loses precision).
        """
        if t < 0 or 2 * self.max_rate * t > MAX_GROWTH:
            raise ValueError(
                f"t = {t} is outside [0, {MAX_GROWTH / (2 * max(self.max_rate, 1e-300)):.4g}]: the closed form loses "
                "precision once 2 max eig(F) t passes ~30. Compare at earlier times."
            )
        size = self.f.shape[0]
        augmented = np.zeros((2 * size, 2 * size))
        augmented[:size, :size] = 2 * self.f
        augmented[:size, size:] = np.eye(size)
        integral = self._expm(augmented * t)[:size, size:]
        grown = self._expm(self.f * t) @ self.q_0
        inner = np.eye(self.q_0.shape[1]) + self.q_0.T @ integral @ self.q_0
        gram = grown @ np.linalg.solve(inner, grown.T)
        return LambdaBalancedState(t=t, gram=(gram + gram.T) / 2, d=self.d)
