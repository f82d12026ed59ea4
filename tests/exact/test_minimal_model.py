"""The closed-form minimal model (theory.md section 4) against a numerical integration of its gradient flow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regimescope.exact import MinimalModelSolution
from tests.exact._flows import minimal_flow, rk4

BETA_STAR = np.array([1.2, -0.4, 0.7])
STARTS = {
    "balanced": (0.3, np.array([0.2, 0.1, -0.2])),
    "upstream": (2.0, np.array([0.1, 0.05, 0.0])),
    "downstream_coth_branch": (0.1, np.array([2.5, -0.5, 1.5])),
    "downstream_tanh_branch": (0.5, np.array([0.2, -0.9, 0.1])),
}


@pytest.mark.parametrize(("a_0", "w_0"), STARTS.values(), ids=STARTS.keys())
def test_closed_form_matches_the_integrated_flow(a_0: float, w_0: np.ndarray) -> None:
    solution = MinimalModelSolution(a_0, w_0, BETA_STAR)
    for t in (0.3, 2.0, 6.0):
        state = solution.at(t)
        reference = rk4(minimal_flow(BETA_STAR), np.concatenate([[a_0], w_0]), t, 4000)
        np.testing.assert_allclose(np.concatenate([[state.a], state.w]), reference, rtol=0, atol=1e-10)
        assert solution.nu(t) == pytest.approx(reference[1:] @ BETA_STAR / reference[0], abs=1e-10)
        assert state.a**2 - state.w @ state.w == pytest.approx(solution.delta, abs=1e-10)


def test_aligned_balanced_start_follows_theorys_logistic_norm() -> None:
    """theory.md: for delta = 0 started along beta*, r(t) = s r_0 e^{2st} / (s - r_0 + r_0 e^{2st})."""
    s = float(np.linalg.norm(BETA_STAR))
    r_0 = 0.01
    solution = MinimalModelSolution(math.sqrt(r_0), BETA_STAR / s * math.sqrt(r_0), BETA_STAR)
    for t in (0.5, 1.5, 4.0):
        growth = math.exp(2 * s * t)
        expected = s * r_0 * growth / (s - r_0 + r_0 * growth)
        assert np.linalg.norm(solution.at(t).beta) == pytest.approx(expected, rel=1e-12)


def test_kernel_and_function_on_inputs() -> None:
    solution = MinimalModelSolution(0.5, np.array([0.2, 0.3, -0.1]), BETA_STAR)
    state = solution.at(1.0)
    x = np.random.default_rng(0).standard_normal((5, 3))
    expected = x @ (state.a**2 * np.eye(3) + np.outer(state.w, state.w)) @ x.T
    np.testing.assert_allclose(state.kernel(x), expected, rtol=1e-14)
    np.testing.assert_allclose(state.function(x), x @ (state.a * state.w), rtol=1e-14)


@pytest.mark.parametrize(
    ("a_0", "w_0", "beta_star", "message"),
    [
        (0.0, np.ones(3), BETA_STAR, r"a_0 is 0; expected a non-zero output weight"),
        (1.0, np.ones(3), np.zeros(3), r"beta_star is 0"),
        (1.0, np.ones(2), BETA_STAR, r"w_0 has shape \(2,\) but beta_star has \(3,\)"),
        (0.1, -np.array([2.5, -0.5, 1.5]), BETA_STAR, r"expected it above -1\. From this start a crosses 0"),
    ],
)
def test_starts_outside_the_closed_form_are_refused(a_0, w_0, beta_star, message) -> None:
    with pytest.raises(ValueError, match=message):
        MinimalModelSolution(a_0, w_0, beta_star)


def test_times_beyond_float64_are_refused() -> None:
    solution = MinimalModelSolution(1.0, np.array([0.2, 0.1, 0.0]), BETA_STAR)
    with pytest.raises(ValueError, match=r"t = 1000 is outside \[0, "):
        solution.at(1000)
    with pytest.raises(ValueError, match=r"t = -1 is outside"):
        solution.at(-1)
