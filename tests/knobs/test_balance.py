"""The balance knob: every unit's balance set at a fixed product, the function unchanged across homogeneous ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from regimescope.conservation import conserved_quantities
from regimescope.exact import LambdaBalancedSolution, lambda_balanced_init
from regimescope.knobs import rebalance
from regimescope.scenarios import InitSpec, make_student
from regimescope.scenarios.models import two_layer_linear, whitened_inputs


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().double()


def test_delta_at_fixed_product_reproduces_the_demo_students_construction() -> None:
    for delta in (-2.0, 1.0):
        rebalanced = rebalance(make_student(InitSpec(scale=0.3, balance=0.0), 8, 16, seed=0), delta=delta)
        expected = make_student(InitSpec(scale=0.3, balance=delta), 8, 16, seed=0)
        for got, want in zip(rebalanced.parameters(), expected.parameters()):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_rebalanced_aligned_linear_net_is_lambda_balanced_with_the_same_product() -> None:
    w_1, w_2 = lambda_balanced_init(0.0, np.array([1.0, 0.7, 0.4]), 3, 3, seed=1)
    _, vectors = np.linalg.eigh(w_1 @ w_1.T)  # hidden units along the singular directions
    model = two_layer_linear(vectors.T @ w_1, w_2 @ vectors)
    rebalanced = rebalance(model, delta=5.0)
    a, b = rebalanced[0].weight.detach().numpy(), rebalanced[1].weight.detach().numpy()
    np.testing.assert_allclose(b.T @ b - a @ a.T, 5.0 * np.eye(3), atol=1e-10)
    np.testing.assert_allclose(b @ a, w_2 @ w_1, atol=1e-12)
    x = whitened_inputs(12, 3, 0, scale=12)
    assert LambdaBalancedSolution(a, b, x, x).lam == pytest.approx(5.0)


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)), (7, 5)),
        (
            lambda: nn.Sequential(
                nn.Conv2d(2, 4, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(4, 6, 3, padding=1, groups=2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(6 * 4 * 4, 3),
            ),
            (3, 2, 8, 8),
        ),
    ],
    ids=["deep-mlp", "grouped-cnn"],
)
def test_every_units_rho_reaches_the_target_and_the_function_is_unchanged(build, shape) -> None:
    model = _seeded(build)
    x = torch.randn(*shape, dtype=torch.float64)
    rebalanced = rebalance(model, rho=0.6)
    torch.testing.assert_close(rebalanced(x), model(x), rtol=1e-10, atol=1e-12)
    quantities = conserved_quantities(rebalanced)
    assert len(quantities) == 2
    for balance in quantities.values():
        torch.testing.assert_close(balance.rho, torch.full_like(balance.rho, 0.6), rtol=0, atol=1e-8)


def test_the_model_itself_is_left_alone_and_pairs_can_be_chosen() -> None:
    model = _seeded(lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)))
    before = [p.detach().clone() for p in model.parameters()]
    rebalanced = rebalance(model, rho=-0.5, pairs=["2-4"])
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert torch.equal(rebalanced[0].weight, model[0].weight)
    rho = conserved_quantities(rebalanced)["2-4"].rho
    torch.testing.assert_close(rho, torch.full_like(rho, -0.5), rtol=0, atol=1e-10)


def test_non_homogeneous_pairs_and_bad_targets_are_refused_with_the_fix() -> None:
    tanh = _seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="not conserved|homogeneous"):
        rebalance(tanh, rho=0.5)
    relu = _seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="exactly one"):
        rebalance(relu)
    with pytest.raises(ValueError, match="strictly between"):
        rebalance(relu, rho=1.0)
    with pytest.raises(ValueError, match="its pairs are"):
        rebalance(relu, rho=0.1, pairs=["x-y"])
