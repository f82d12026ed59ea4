"""Few-line numpy float64 reference formulas of theory.md section 5, shared by the functional and indicator tests.

Each formula is written straight from its definition, sharing no code with the library it checks.
"""

from __future__ import annotations

import numpy as np


def as_array(x: object) -> np.ndarray:
    """``x`` (a tensor or array) as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def random_psd(n: int, rank: int, seed: int) -> np.ndarray:
    """A random ``(n, n)`` positive semi-definite matrix ``G G^T`` of rank ``min(n, rank)``."""
    g = np.random.default_rng(seed).standard_normal((n, rank))
    return g @ g.T


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``S(A, B) = 1 - <A, B>_F / (|A|_F |B|_F)`` (section 5.1)."""
    return 1.0 - np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))


def relative_change(k_t: np.ndarray, k_0: np.ndarray) -> float:
    """``|K_t - K_0|_F / |K_0|_F`` (section 5.2)."""
    return np.linalg.norm(k_t - k_0) / np.linalg.norm(k_0)


def norm_ratio(k_t: np.ndarray, k_0: np.ndarray) -> float:
    """``|K_t|_F / |K_0|_F`` (section 5.2)."""
    return np.linalg.norm(k_t) / np.linalg.norm(k_0)


def kernel_angle(a: np.ndarray, b: np.ndarray) -> float:
    """``arccos(1 - S(A, B))`` in radians (section 5.3)."""
    return float(np.arccos(np.clip(1.0 - kernel_distance(a, b), -1.0, 1.0)))


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """``(n,)`` integer labels as ``(n, classes)`` one-hot rows."""
    return np.eye(classes)[np.asarray(labels, dtype=int)]


def centring(n: int) -> np.ndarray:
    """``H = I - 11^T / n``."""
    return np.eye(n) - np.ones((n, n)) / n


def kernel_alignment(k: np.ndarray, y: np.ndarray, centered: bool = True) -> float:
    """``<H K H, Y_c Y_c^T>_F / (|H K H|_F |Y_c Y_c^T|_F)``, ``Y_c = H Y`` (section 5.4); ``y`` is ``(n, c)``."""
    h = centring(k.shape[0]) if centered else np.eye(k.shape[0])
    k_c, y_c = h @ k @ h, h @ y
    yy = y_c @ y_c.T
    return np.sum(k_c * yy) / (np.linalg.norm(k_c) * np.linalg.norm(yy))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """``|Psi^T Phi|_F^2 / (|Phi^T Phi|_F |Psi^T Psi|_F)`` of column-centred ``Phi = x``, ``Psi = y`` (section 5.5)."""
    phi = x.reshape(x.shape[0], -1)
    psi = y.reshape(y.shape[0], -1)
    phi, psi = phi - phi.mean(0), psi - psi.mean(0)
    return np.linalg.norm(psi.T @ phi) ** 2 / (np.linalg.norm(phi.T @ phi) * np.linalg.norm(psi.T @ psi))


def effective_rank(k: np.ndarray) -> float:
    """``exp(-sum_i p_i ln p_i)``, ``p_i = sigma_i / sum_j sigma_j`` (section 5.6)."""
    sigma = np.linalg.svd(k, compute_uv=False)
    p = sigma / sigma.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def pattern_change(now: np.ndarray, start: np.ndarray) -> float:
    """Fraction of entries whose boolean state differs (section 5.7)."""
    return float(np.mean(np.asarray(now, dtype=bool) != np.asarray(start, dtype=bool)))


def weight_change(now: list[np.ndarray], start: list[np.ndarray]) -> float:
    """``|W_t - W_0|_F / |W_0|_F`` over a layer's parameters taken together (section 5.8)."""
    delta = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(now, start)))
    return float(delta / np.sqrt(sum(np.sum(b**2) for b in start)))
