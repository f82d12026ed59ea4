"""Sketch mode: unbiased, with the error the docs state, exact for blocks no larger than the sketch."""

from __future__ import annotations

import pytest
import torch

from regimescope.ntk import empirical_ntk, plan_ntk
from regimescope.ntk.execution.sketch import CountSketch
from tests._models import build, inputs_for
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk, relative_error

SEEDS = 200


def _sketched(name: str, m: int, seed: int, implementation: str = "layer_per_sample") -> torch.Tensor:
    return empirical_ntk(build(name), inputs_for(name, 6, 1), dtype=torch.float64, sketch=m, seed=seed,
                         implementation=implementation)


@pytest.mark.parametrize("implementation", ["layer_per_sample", "per_sample"])
def test_sketch_is_unbiased(implementation: str) -> None:
    """The mean of many seeds' sketches converges to the exact kernel (error of the mean ~ error / sqrt(seeds))."""
    exact = reference_ntk(build("mlp"), inputs_for("mlp", 6, 1))
    sketches = [_sketched("mlp", 16, seed, implementation) for seed in range(SEEDS)]
    single = sum(relative_error(s, exact) for s in sketches) / SEEDS

    assert single > 1e-3
    assert relative_error(torch.stack(sketches).mean(0), exact) < 3 * single / SEEDS**0.5


@pytest.mark.parametrize("m", [16, 32, 64])
def test_sketch_error_is_within_the_documented_bound(m: int) -> None:
    """The measured relative Frobenius error is below the per-entry bound sqrt(2/m) stated in the docs."""
    exact = reference_ntk(build("mlp"), inputs_for("mlp", 6, 1))
    errors = [relative_error(_sketched("mlp", m, seed), exact) for seed in range(40)]

    assert sum(errors) / len(errors) <= (2 / m) ** 0.5


def test_larger_sketches_are_more_accurate() -> None:
    exact = reference_ntk(build("cnn_bn"), inputs_for("cnn_bn", 6, 1))
    error = {m: sum(relative_error(_sketched("cnn_bn", m, s), exact) for s in range(20)) / 20 for m in (8, 64)}

    assert error[64] < error[8]


def test_blocks_no_larger_than_the_sketch_stay_exact() -> None:
    kernel = _sketched("cnn_bn", 10**6, seed=3)

    assert_kernels_close(kernel, reference_ntk(build("cnn_bn"), inputs_for("cnn_bn", 6, 1)), 1e-10)


def test_same_seed_same_sketch_and_seeds_differ() -> None:
    assert torch.equal(_sketched("mlp", 16, 5), _sketched("mlp", 16, 5))
    assert not torch.equal(_sketched("mlp", 16, 5), _sketched("mlp", 16, 6))


def test_auto_sketches_only_where_cheaper() -> None:
    """With implementation='auto', a linear layer on (n, d) inputs keeps its (cheaper) exact Gram form."""
    plan = plan_ntk(build("mlp"), inputs_for("mlp", 6, 1), sketch=4)

    assert {block.form for block in plan.blocks} == {"gram"}


def test_count_sketch_preserves_inner_products_on_average() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 1000, generator=g, dtype=torch.float64)
    estimates = torch.tensor([
        (CountSketch(1000, 50, seed, "p", torch.float64, x.device)(x)
         @ CountSketch(1000, 50, seed, "p", torch.float64, x.device)(y)).item()
        for seed in range(400)
    ])
    bound = ((x.norm() ** 2 * y.norm() ** 2 + (x @ y) ** 2) / 50).sqrt()

    assert abs(estimates.mean() - x @ y) < 4 * bound / 400**0.5
    assert estimates.std() <= 1.2 * bound


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_invalid_sketch_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="sketch"):
        empirical_ntk(build("mlp"), inputs_for("mlp", 2, 1), sketch=value)
