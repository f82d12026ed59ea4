"""The lazy ratio against a direct computation on the minimal model, and its scaling with the output scale."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from regimescope.forecast import lazy_ratios, target_residual
from regimescope.scenarios.models import CentredScaled, minimal_model

X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
Y = torch.randn(6, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _ratios(model: nn.Module, ridges: tuple[float, ...] = (1e-4,), **kwargs: object) -> list:
    work = copy.deepcopy(model)
    prediction = work(X)
    return lazy_ratios(work, X, prediction, target_residual(prediction, Y), ridges, dtype=torch.float64, **kwargs)


def _direct(a: float, w: np.ndarray, eta_a: float, eta_w: float, ridge: float) -> float:
    """q for f = a w^T x with rates: K_H = X (eta_w a^2 I + eta_a w w^T) X^T, dtheta = H J^T c."""
    x, y = X.numpy(), Y.numpy()[:, 0]

    def kernel(a_: float, w_: np.ndarray) -> np.ndarray:
        return x @ (eta_w * a_**2 * np.eye(3) + eta_a * np.outer(w_, w_)) @ x.T

    k_0 = kernel(a, w)
    top = np.linalg.eigvalsh(k_0).max()
    c = np.linalg.solve(k_0 + ridge * top * np.eye(6), y - x @ (a * w))
    da, dw = eta_a * c @ (x @ w), eta_w * a * (x.T @ c)
    return float(np.linalg.norm(kernel(a + da, w + dw) - k_0) / np.linalg.norm(k_0))


@pytest.mark.parametrize("rates", [None, {"0.weight": 0.1, "1.weight": 0.4}], ids=["equal", "per_layer"])
def test_minimal_model_ratio_matches_the_direct_computation(rates: dict | None) -> None:
    w = np.array([0.4, -0.2, 0.3])
    (ratio,) = _ratios(minimal_model(0.7, w), learning_rates=rates)
    eta_w, eta_a = (0.1, 0.4) if rates else (1.0, 1.0)
    assert ratio.change == pytest.approx(_direct(0.7, w, eta_a, eta_w, 1e-4), rel=1e-9)
    assert 0 < ratio.fitted <= 1


def test_a_common_factor_of_the_rates_changes_nothing() -> None:
    model = minimal_model(0.7, np.array([0.4, -0.2, 0.3]))
    (plain,) = _ratios(model)
    (scaled,) = _ratios(model, learning_rates={"0.weight": 0.03, "1.weight": 0.03})
    assert scaled.change == pytest.approx(plain.change, rel=1e-12)


def test_ratio_falls_as_one_over_the_output_scale() -> None:
    """theory.md 6.4: the lazy solution moves the parameters ~ 1 / alpha, so the kernel changes ~ 1 / alpha."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1)).double()
    ratios = [_ratios(CentredScaled(copy.deepcopy(net), alpha))[0].change for alpha in (10.0, 100.0, 1000.0)]
    assert ratios[0] / ratios[1] == pytest.approx(10, rel=0.1)
    assert ratios[1] / ratios[2] == pytest.approx(10, rel=0.02)


def test_a_larger_ridge_fits_less_and_needs_a_smaller_change() -> None:
    model = minimal_model(0.1, np.array([2.0, 0.5, -1.0]))
    fast, full = _ratios(model, (0.1, 1e-6))
    assert fast.fitted < full.fitted
    assert fast.change < full.change
