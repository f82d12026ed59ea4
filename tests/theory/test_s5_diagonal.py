"""Scenario 5: diagonal linear nets ``beta = u*u - v*v`` on a sparse regression, across initial scales alpha.

Small alpha is rich: the kernel ``4 x^T diag(u^2 + v^2) x'`` grows by orders of magnitude onto the support and
gradient descent finds the sparse solution. Large alpha is lazy: the kernel stays ``8 alpha^2 x^T x'`` (S ~ 0) and
gradient descent finds the minimum-l2 interpolant, as kernel regression with that kernel does (Woodworth et al.).
"""

from __future__ import annotations

import functools

import pytest
import torch

from regimescope.scenarios.catalogue import SPARSE_SUPPORT, diagonal_setup, sparse_task
from tests.theory._runs import Run, monitored_run

ALPHAS = (0.01, 0.1, 1.0, 10.0)


@functools.cache
def _run(alpha: float) -> tuple[Run, torch.Tensor]:
    setup = diagonal_setup(alpha)
    run = monitored_run(setup, dtype=torch.float32, every=setup.steps // 8)
    return run, setup.model.beta.detach()


def _sparse() -> torch.Tensor:
    beta = torch.zeros(40, dtype=torch.float64)
    beta[:SPARSE_SUPPORT] = 1.0
    return beta


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_small_initialisation_is_rich(alpha: float) -> None:
    run, _ = _run(alpha)
    assert run.last("regimescope/kernel/norm_ratio") > 5
    assert run.last("regimescope/kernel/distance_from_init") > 0.1
    assert run.monitor.regime.label == "rich"


@pytest.mark.slow
def test_small_initialisation_finds_the_sparse_solution() -> None:
    _, beta = _run(0.01)
    assert (beta - _sparse()).norm() < 0.05
    assert beta.abs().sum() < 1.05 * SPARSE_SUPPORT


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1.0, 10.0])
def test_large_initialisation_is_lazy_and_finds_the_minimum_norm_interpolant(alpha: float) -> None:
    run, beta = _run(alpha)
    x, y = sparse_task()
    minimum_norm = torch.linalg.pinv(x) @ y[:, 0]
    assert (beta - minimum_norm).norm() < 0.01 * minimum_norm.norm()
    assert run.last("regimescope/kernel/distance_from_init") < 1e-4
    assert run.monitor.regime.label == "lazy"


@pytest.mark.slow
def test_richness_falls_with_the_initial_scale() -> None:
    distances = [_run(alpha)[0].last("regimescope/kernel/distance_from_init") for alpha in ALPHAS]
    growth = [_run(alpha)[0].last("regimescope/kernel/norm_ratio") for alpha in ALPHAS]
    assert distances == sorted(distances, reverse=True)
    assert growth == sorted(growth, reverse=True)
