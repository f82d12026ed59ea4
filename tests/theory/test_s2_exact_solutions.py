"""Scenario 2: the monitor's NTK, kernel distance and function follow the exact solutions of theory.md section 4.

Small-step gradient descent follows gradient flow at time ``t = steps * lr`` up to ``O(lr)``; with
``lr * lambda_max(K) <= 2.5e-3`` the monitor's measurements (float64) must match the closed forms to 1% at every
measurement of the run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.exact import LambdaBalancedSolution, MinimalModelSolution, lambda_balanced_init
from regimescope.functional import kernel_distance
from regimescope.probe import Probe
from regimescope.scenarios import Setup
from regimescope.scenarios.catalogue import lambda_task, minimal_start, minimal_task
from regimescope.scenarios.models import minimal_model, two_layer_linear
from tests.theory._runs import Run, monitored_run, start_and_end

TOLERANCE = 0.01
DISTANCE_TAG = "regimescope/kernel/distance_from_init"


def _setup(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, loss_weight: float) -> Setup:
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y.reshape(len(y), -1))
    return Setup(model, inputs, targets, 0.0, 0, loss_weight, Probe(inputs, targets))


def _relative(measured: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(measured - exact) / np.linalg.norm(exact))


def _check(run: Run, x: np.ndarray, lr: float, state_at) -> None:
    """Kernel, function and kernel distance at every measurement within 1% of the exact solution."""
    k_0 = state_at(0.0).kernel(x)
    distances = run.series(DISTANCE_TAG)
    assert len(run.recorder.kernels) >= 16
    for step, kernel in run.recorder.kernels.items():
        state = state_at(step * lr)
        exact_kernel = state.kernel(x)
        assert _relative(kernel.numpy(), exact_kernel) < TOLERANCE, step
        outputs = run.recorder.outputs[step].numpy()
        assert _relative(outputs.reshape(state.function(x).shape), state.function(x)) < TOLERANCE, step
        exact_distance = float(kernel_distance(torch.from_numpy(k_0), torch.from_numpy(exact_kernel)))
        assert abs(distances[step] - exact_distance) <= TOLERANCE * exact_distance + 1e-12, step


MINIMAL = {
    # (a_0, |w_0|, aligned, gradient-flow time, largest rate of the run)
    "balanced_small_init": (0.05, 0.05, False, 8.0, 2.0),
    "upstream_delta_9": (3.0, 0.1, False, 2.0, 9.2),
    "downstream_delta_-4": (0.05, 2.0, False, 8.0, 4.3),
    "balanced_aligned": (0.2, 0.2, True, 4.0, 2.0),
}


@pytest.mark.slow
@pytest.mark.parametrize(("a_0", "w_norm", "aligned", "time", "rate"), MINIMAL.values(), ids=MINIMAL.keys())
def test_minimal_model_matches_the_closed_form(
    a_0: float, w_norm: float, aligned: bool, time: float, rate: float
) -> None:
    x, y = minimal_task()
    a, w = minimal_start(a_0, w_norm, aligned)
    solution = MinimalModelSolution(a, w, x.T @ y)
    lr = 2.5e-3 / rate
    run = monitored_run(_setup(minimal_model(a, w), x, y, 1.0), lr=lr, steps=round(time / lr))
    _check(run, x, lr, solution.at)


LAMBDA = {
    # (lambda, sigma, gradient-flow time)
    "balanced_small_init": (0.0, 0.01, 5.0),
    "upstream_lambda_16": (16.0, 0.5, 0.6),
    "downstream_lambda_-16": (-16.0, 0.5, 0.6),
}


@pytest.mark.slow
@pytest.mark.parametrize(("lam", "sigma", "time"), LAMBDA.values(), ids=LAMBDA.keys())
def test_lambda_balanced_net_matches_the_closed_form(lam: float, sigma: float, time: float) -> None:
    x, y = lambda_task()
    w_1, w_2 = lambda_balanced_init(lam, np.full(3, sigma) * np.linspace(1, 0.5, 3), 3, 3, seed=1)
    solution = LambdaBalancedSolution(w_1, w_2, x, y)
    lr = 2.5e-3 / (abs(lam) + 2 * solution.max_rate)
    run = monitored_run(_setup(two_layer_linear(w_1, w_2), x, y, 1 / len(x)), lr=lr, steps=round(time / lr))
    _check(run, x, lr, solution.at)


def _final_distance(build, rate: float, time: float) -> float:
    lr = 1e-2 / rate
    steps = round(time / lr)
    run = monitored_run(build(), lr=lr, steps=steps, schedule=start_and_end(steps))
    return run.last(DISTANCE_TAG)


@pytest.mark.slow
def test_kernel_distance_falls_as_delta_and_lambda_to_the_minus_four() -> None:
    """theory.md 4: delta -> inf (minimal model) and |lambda| -> inf (lambda-balanced) are lazy, S(K_0, K_inf) ~ ^-4."""
    x, y = minimal_task()
    s = float(np.linalg.norm(x.T @ y))
    deltas = np.array([16.0, 32.0, 64.0])
    minimal = [
        _final_distance(lambda d=d: _setup(minimal_model(*minimal_start(np.sqrt(d), 0.1, False)), x, y, 1.0), d, 12 / d)
        for d in deltas
    ]
    xl, yl = lambda_task()
    lambdas = np.array([16.0, 32.0, 64.0])

    def balanced(lam: float) -> Setup:
        w_1, w_2 = lambda_balanced_init(lam, np.full(3, 0.5), 3, 3, seed=1)
        return _setup(two_layer_linear(w_1, w_2), xl, yl, 1 / len(xl))

    linear = [_final_distance(lambda lam=lam: balanced(lam), lam + 2 * s, 12 / lam) for lam in lambdas]
    for values, scales in ((minimal, deltas), (linear, lambdas)):
        slope = np.polyfit(np.log(scales), np.log(values), 1)[0]
        assert -4.3 < slope < -3.7, (values, slope)
