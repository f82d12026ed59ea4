"""Exact gradient-flow solution of the minimal model ``f(x) = a w^T x`` (Kunin et al. 2024; theory.md section 4).

With whitened data (``X^T X = I``), the loss ``L = |X beta - y|^2 / 2`` of ``beta = a w`` is
``|beta - beta*|^2 / 2 + const`` with ``beta* = X^T y``, and gradient flow with unit rates conserves
``delta = a^2 - |w|^2``. Writing ``u = w / a`` and ``nu = u^T beta*`` (``s = |beta*|``):

- ``nu`` solves the Riccati equation ``d nu/dt = s^2 - delta nu - nu^2``:
  ``nu(t) = (-delta + D_s tanh(D_s t / 2 + c_0)) / 2``, ``D_s = sqrt(delta^2 + 4 s^2)``,
  ``c_0 = artanh((delta + 2 nu_0) / D_s)`` (with ``coth`` and ``arcoth`` when ``nu_0`` starts above the fixed
  point ``(D_s - delta) / 2``; ``c_0 = inf`` when it starts on it, the aligned start);
- ``u`` solves the linear equation ``du/dt = beta* - (nu + delta) u``:
  ``u(t) = Phi(t) u_0 + Psi(t) beta*`` with ``Phi(t) = e^{-delta t / 2} cosh(c_0) / cosh(D_s t / 2 + c_0)`` and
  ``Psi(t) = Phi(t) int_0^t e^{delta s / 2} cosh(D_s s / 2 + c_0) / cosh(c_0) ds`` (elementary; ``sinh`` on the
  coth branch);
- ``a^2 = delta / (1 - |u|^2)`` when ``delta != 0``; when ``delta = 0``, ``r = |beta| = a^2`` solves the Bernoulli
  equation ``dr/dt = 2 r (nu - r)``, so ``1 / r(t) = [1 / r_0 + 2 int_0^t g] / g(t)`` with
  ``g(t) = cosh^2(s t + c_0) / cosh^2(c_0)``.

Then ``beta = a^2 u``, the NTK on inputs ``X_p`` is ``K = X_p (a^2 I + w w^T) X_p^T`` and the function is
``X_p beta``. The solution is regular when ``delta + 2 nu_0 > -D_s``; otherwise ``a`` reaches 0 in finite time
(``u = w / a`` blows up) and :class:`MinimalModelSolution` refuses the start.

Regimes (theory.md): ``delta -> +inf`` lazy (``M -> delta I``, ``S(K_0, K_inf) ~ delta^-4``); ``delta = 0`` from
small initialisation rich (the kernel scale ``~ |beta|`` grows by ``s / |beta_0|``); ``delta -> -inf`` a
rank-one kernel along ``w``: lazy when ``beta_0`` points at ``beta*``, otherwise a slow "delayed rich" rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_BALANCED = 1e-9
"""``|delta|`` below this fraction of ``a_0^2 + |w_0|^2`` is treated as exactly balanced (``delta = 0`` branch)."""
_ALIGNED = 1e-12
"""``(delta + 2 nu_0) / D_s`` within this of 1 is the aligned start: ``nu`` sits at its fixed point."""
_MAX_EXPONENT = 600.0
"""Largest exponent evaluated (float64 overflows near 709)."""


@dataclass(frozen=True)
class MinimalModelState:
    """The minimal model's parameters at one time.

    Attributes:
        t: Gradient-flow time (``steps * lr`` for gradient descent).
        a: Output weight.
        w: Input weights, ``(d,)``.
    """

    t: float
    a: float
    w: np.ndarray

    @property
    def beta(self) -> np.ndarray:
        """The linear predictor ``beta = a w``."""
        return self.a * self.w

    def kernel(self, x: np.ndarray) -> np.ndarray:
        """NTK on inputs ``x`` (``(n, d)``): ``K = x (a^2 I + w w^T) x^T``."""
        projected = x @ self.w
        return self.a**2 * (x @ x.T) + np.outer(projected, projected)

    def function(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``x beta`` on inputs ``x`` (``(n, d)``)."""
        return x @ self.beta


class MinimalModelSolution:
    """Closed-form gradient flow of ``f(x) = a w^T x`` from ``(a_0, w_0)`` towards ``beta*`` (unit rates).

    Args:
        a_0: Initial output weight (non-zero).
        w_0: Initial input weights, ``(d,)``.
        beta_star: Least-squares solution ``X^T y`` of the whitened task, ``(d,)``, non-zero.

    Raises:
        ValueError: For ``a_0 = 0``, ``beta* = 0``, mismatched shapes, or a start with
            ``delta + 2 nu_0 <= -D_s`` (there ``a`` crosses 0 and the closed form does not apply).
    """

    def __init__(self, a_0: float, w_0: np.ndarray, beta_star: np.ndarray) -> None:
        w_0 = np.asarray(w_0, dtype=np.float64).reshape(-1)
        beta_star = np.asarray(beta_star, dtype=np.float64).reshape(-1)
        if a_0 == 0:
            raise ValueError("a_0 is 0; expected a non-zero output weight (u = w / a must exist). Start from a != 0.")
        if w_0.shape != beta_star.shape:
            raise ValueError(f"w_0 has shape {w_0.shape} but beta_star has {beta_star.shape}; expected the same (d,).")
        self.s = float(np.linalg.norm(beta_star))
        if self.s == 0:
            raise ValueError("beta_star is 0; expected a non-zero target (nothing to learn otherwise).")
        self.a_0 = float(a_0)
        self.w_0 = w_0
        self.beta_star = beta_star
        self.delta = self.a_0**2 - float(w_0 @ w_0)
        self.balanced = abs(self.delta) <= _BALANCED * (self.a_0**2 + float(w_0 @ w_0))
        if self.balanced:
            self.delta = 0.0
        self.u_0 = w_0 / self.a_0
        self.nu_0 = float(self.u_0 @ beta_star)
        self.d_s = math.sqrt(self.delta**2 + 4 * self.s**2)
        ratio = (self.delta + 2 * self.nu_0) / self.d_s
        if not ratio > -1:
            raise ValueError(
                f"(delta + 2 nu_0) / D_s = {ratio:.4g}; expected it above -1. From this start a crosses 0 in finite "
                "time, where the closed form of theory.md section 4 does not apply; integrate the flow numerically."
            )
        self.branch = 1.0 if ratio < 1 else -1.0
        if abs(ratio - 1) <= _ALIGNED:
            self.c_0 = math.inf  # nu stays at its stable fixed point: the aligned start of theory.md
        else:
            self.c_0 = math.atanh(ratio if ratio < 1 else 1 / ratio)

    def _check_time(self, t: float) -> None:
        if t < 0 or max(abs(self.delta), self.d_s) * t > _MAX_EXPONENT:
            raise ValueError(
                f"t = {t} is outside [0, {_MAX_EXPONENT / max(abs(self.delta), self.d_s):.4g}]: expected a "
                "non-negative time at which the exponentials stay finite in float64."
            )

    def nu(self, t: float) -> float:
        """The Riccati projection ``nu(t) = (w / a)^T beta*``."""
        y = self.d_s * t / 2 + self.c_0
        return 0.5 * (-self.delta + self.d_s * (math.tanh(y) if self.branch > 0 else 1 / math.tanh(y)))

    def _phi_psi(self, t: float) -> tuple[float, float]:
        """``Phi(t)`` and ``Psi(t)`` of ``u(t) = Phi(t) u_0 + Psi(t) beta*``.

        Written with ``E = b e^{-2 c_0}`` and ``E_t = b e^{-2 (D_s t / 2 + c_0)}``, ``b = +1`` on the tanh branch
        (``nu_0`` below its fixed point) and ``-1`` on the coth branch (above), so that the aligned start
        (``c_0 = inf``) is the limit ``E = E_t = 0``:
        ``Phi = e^{-(D_s + delta) t / 2} (1 + E) / (1 + E_t)`` and
        ``Psi = 2 [(1 - e^{-(D_s + delta) t / 2}) / (D_s + delta) + (E e^{-(D_s + delta) t / 2} - E_t) / (D_s - delta)]
        / (1 + E_t)``.
        """
        plus, minus = self.d_s + self.delta, self.d_s - self.delta
        e_0 = self.branch * math.exp(-2 * self.c_0)
        e_t = e_0 * math.exp(-self.d_s * t)
        decay = math.exp(-plus * t / 2)
        phi = decay * (1 + e_0) / (1 + e_t)
        psi = 2 * ((1 - decay) / plus + (e_0 * decay - e_t) / minus) / (1 + e_t)
        return phi, psi

    def _a_squared(self, t: float, u: np.ndarray) -> float:
        """``a(t)^2``: ``delta / (1 - |u|^2)``, or ``r(t)`` of the Bernoulli equation when balanced.

        With ``E``, ``E_t`` as in :meth:`_phi_psi` (``D_s = 2 s`` when balanced):
        ``g(t) = e^{2 s t} ((1 + E_t) / (1 + E))^2`` and
        ``int_0^t g = [2 t E + (e^{2 s t} - E E_t - 1 + E^2) / (2 s)] / (1 + E)^2``.
        """
        if not self.balanced:
            return self.delta / (1 - float(u @ u))
        s = self.s
        e_0 = self.branch * math.exp(-2 * self.c_0)
        e_t = e_0 * math.exp(-2 * s * t)
        growth = math.exp(2 * s * t)
        g = growth * ((1 + e_t) / (1 + e_0)) ** 2
        integral = (2 * t * e_0 + (growth - e_0 * e_t - 1 + e_0**2) / (2 * s)) / (1 + e_0) ** 2
        return g / (1 / self.a_0**2 + 2 * integral)

    def at(self, t: float) -> MinimalModelState:
        """The parameters at gradient-flow time ``t``.

        Raises:
            ValueError: For a negative ``t`` or one so large that float64 exponentials overflow.
        """
        self._check_time(t)
        phi, psi = self._phi_psi(t)
        u = phi * self.u_0 + psi * self.beta_star
        a = math.copysign(math.sqrt(self._a_squared(t, u)), self.a_0)
        return MinimalModelState(t=t, a=a, w=a * u)
