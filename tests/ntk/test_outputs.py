"""Kernels of an explicit output subset and of a seeded random projection of the outputs."""

from __future__ import annotations

import pytest
import torch

from regimescope.ntk import empirical_ntk, projection_estimate
from tests._models import build, inputs_for
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk, relative_error


@pytest.mark.parametrize("implementation", ["auto", "factored", "layer_per_sample", "per_sample", "full_batch"])
@pytest.mark.parametrize("kind", ["trace", "full"])
def test_output_subset_is_the_kernel_of_those_outputs(kind: str, implementation: str) -> None:
    model, x1, x2 = build("transformer_block"), inputs_for("transformer_block", 4, 1), inputs_for(
        "transformer_block", 3, 2)
    chosen = [0, 5, 13, 27]

    kernel = empirical_ntk(model, x1, x2, kind=kind, dtype=torch.float64, outputs=chosen,
                           implementation=implementation)

    expected = reference_ntk(model, x1, x2, kind=kind, output_fn=lambda out: out.reshape(out.shape[0], -1)[:, chosen])
    assert_kernels_close(kernel, expected, 1e-10)


def test_output_slice() -> None:
    model, x = build("mlp"), inputs_for("mlp", 4, 1)
    kernel = empirical_ntk(model, x, dtype=torch.float64, outputs=slice(1, 3))

    assert_kernels_close(kernel, reference_ntk(model, x, output_fn=lambda out: out[:, 1:3]), 1e-10)


def test_projection_estimates_the_trace_kernel_without_bias() -> None:
    model, x = build("transformer_block"), inputs_for("transformer_block", 4, 1)
    exact = reference_ntk(model, x)
    seeds = 300
    estimates = [empirical_ntk(model, x, dtype=torch.float64, output_projection=2, seed=s) for s in range(seeds)]
    single = sum(relative_error(e, exact) for e in estimates) / seeds

    assert single > 1e-3
    assert relative_error(torch.stack(estimates).mean(0), exact) < 3 * single / seeds**0.5


def test_projection_is_seeded_and_full_kind_is_over_the_combinations() -> None:
    model, x = build("mlp"), inputs_for("mlp", 4, 1)
    a = empirical_ntk(model, x, kind="full", output_projection=5, seed=1)

    assert a.shape == (4, 4, 5, 5)
    assert torch.equal(a, empirical_ntk(model, x, kind="full", output_projection=5, seed=1))
    assert not torch.equal(a, empirical_ntk(model, x, kind="full", output_projection=5, seed=2))


@pytest.mark.parametrize(("argument", "value", "match"), [
    ("outputs", [7], "outputs"),
    ("outputs", [], "outputs"),
    ("outputs", [[0, 1]], "outputs"),
    ("output_projection", 0, "output_projection"),
    ("output_projection", 1.5, "output_projection"),
])
def test_invalid_output_arguments_are_refused(argument: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        empirical_ntk(build("mlp"), inputs_for("mlp", 2, 1), **{argument: value})


def test_projection_reports_its_own_noise() -> None:
    """``projection_estimate`` of the ``kind="full"`` kernel of the combinations gives the ``kind="trace"`` result
    and a standard error whose square matches, on average over seeds, both the variance formula of
    :mod:`regimescope.ntk.model.output_map` (from the exact per-output kernels) and the spread the estimates
    really have across seeds."""
    model, x, m, seeds = build("mlp"), inputs_for("mlp", 4, 1), 4, 150
    exact = reference_ntk(model, x, kind="full")
    pairs = torch.triu_indices(exact.shape[2], exact.shape[2], 1)
    formula = ((exact + exact.transpose(2, 3))[:, :, pairs[0], pairs[1]].square().sum(-1) / m).sum()
    results = [projection_estimate(empirical_ntk(model, x, kind="full", dtype=torch.float64, output_projection=m,
                                                 seed=seed)) for seed in range(seeds)]
    estimates = torch.stack([estimate for estimate, _ in results])
    errors = torch.stack([error for _, error in results])

    trace = empirical_ntk(model, x, dtype=torch.float64, output_projection=m, seed=0)
    torch.testing.assert_close(estimates[0], trace, rtol=1e-12, atol=1e-12)
    assert 0.6 < (errors.square().mean(0).sum() / formula).item() < 1.6
    assert 0.6 < (estimates.var(0).sum() / formula).item() < 1.6
    expected_error = (formula / seeds).sqrt().item()  # Frobenius norm of the mean's error, in expectation
    assert (estimates.mean(0) - exact.diagonal(dim1=2, dim2=3).sum(-1)).norm().item() < 3 * expected_error


def test_projection_estimate_refuses_what_is_not_a_full_projected_kernel() -> None:
    with pytest.raises(ValueError, match="kind='full'"):
        projection_estimate(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="m >= 2"):
        projection_estimate(torch.zeros(3, 3, 1, 1))
