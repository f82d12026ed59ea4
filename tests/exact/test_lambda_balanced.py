"""The closed-form lambda-balanced linear network (theory.md section 4) against its integrated flow and autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import regimescope as rs
from regimescope.exact import LambdaBalancedSolution, lambda_balanced_init
from regimescope.scenarios.models import two_layer_linear, whitened_inputs
from tests.exact._flows import rk4, two_layer_flow

D, H, OUT, P = 3, 2, 3, 9


def _task(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = whitened_inputs(P, D, seed, scale=P)
    return x, x @ np.random.default_rng(seed).standard_normal((OUT, D)).T


@pytest.mark.parametrize("lam", [-2.0, 0.0, 3.0])
def test_initialisation_is_lambda_balanced_with_the_product_singular_values(lam: float) -> None:
    sigma = np.array([0.7, 0.2])
    w_1, w_2 = lambda_balanced_init(lam, sigma, D, OUT, seed=1)
    np.testing.assert_allclose(w_2.T @ w_2 - w_1 @ w_1.T, lam * np.eye(H), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(w_2 @ w_1, compute_uv=False)[:H], sigma, rtol=1e-12)


@pytest.mark.parametrize("lam", [-2.0, 0.0, 3.0])
def test_closed_form_matches_the_integrated_flow(lam: float) -> None:
    x, y = _task()
    w_1, w_2 = lambda_balanced_init(lam, np.array([0.3, 0.05]), D, OUT, seed=2)
    solution = LambdaBalancedSolution(w_1, w_2, x, y)
    for t in (0.2, 1.0, 2.5):
        state = rk4(two_layer_flow(x, y, H), np.concatenate([w_1.ravel(), w_2.ravel()]), t, 4000)
        q = np.concatenate([state[: H * D].reshape(H, D).T, state[H * D :].reshape(OUT, H)])
        np.testing.assert_allclose(solution.at(t).gram, q @ q.T, rtol=0, atol=1e-10)


def test_kernels_and_function_match_autograd_on_the_network() -> None:
    x, y = _task()
    w_1, w_2 = lambda_balanced_init(1.0, np.array([0.8, 0.4]), D, OUT, seed=3)
    state = LambdaBalancedSolution(w_1, w_2, x, y).at(0.0)
    model = two_layer_linear(w_1, w_2)
    inputs = torch.from_numpy(x)
    trace = rs.empirical_ntk(model, inputs, dtype=torch.float64).numpy()
    full = rs.empirical_ntk(model, inputs, kind="full", dtype=torch.float64).numpy()
    np.testing.assert_allclose(state.kernel(x), trace, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.full_kernel(x), full, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.function(x), model(inputs).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_inputs_must_be_whitened_and_the_start_balanced() -> None:
    x, y = _task()
    w_1, w_2 = lambda_balanced_init(1.0, np.array([0.8, 0.4]), D, OUT)
    with pytest.raises(ValueError, match=r"x is not whitened: expected x\^T x / P = I"):
        LambdaBalancedSolution(w_1, w_2, 2 * x, y)
    with pytest.raises(ValueError, match=r"not lambda-balanced"):
        LambdaBalancedSolution(w_1 * 1.5, w_2, x, y)
    solution = LambdaBalancedSolution(w_1, w_2, x, y)
    limit = 15 / solution.max_rate
    with pytest.raises(ValueError, match=r"loses precision once 2 max eig\(F\) t passes ~30"):
        solution.at(1.01 * limit)
    assert math.isfinite(solution.at(0.99 * limit).gram.sum())


def test_more_singular_values_than_units_allow_are_refused() -> None:
    with pytest.raises(ValueError, match=r"expected at most min\(d, o\) positive values"):
        lambda_balanced_init(0.0, np.ones(4), D, OUT)
