"""The memory plan: reported before running, within the budget, and chunking never changes the kernel."""

from __future__ import annotations

import pytest
import torch

from regimescope.ntk import NtkMemoryWarning, NtkPlan, empirical_ntk, plan_ntk
from regimescope.ntk.planning.costs import Form
from tests._models import build, inputs_for
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

MiB = 2**20


def _mlp_inputs(n: int) -> torch.Tensor:
    return inputs_for("mlp", n, seed=1)


def test_plan_reports_forms_passes_and_peak() -> None:
    plan = plan_ntk(build("cnn_bn"), inputs_for("cnn_bn", 8, 1), max_memory=64 * MiB)

    assert isinstance(plan, NtkPlan)
    assert plan.fits and 0 < plan.peak_bytes <= plan.budget_bytes == 64 * MiB
    assert plan.forward_passes >= 1 and plan.backward_passes >= 1
    assert [b.name for b in plan.blocks] == ["0", "1", "4", "8"]
    assert all(isinstance(b.form, Form) for b in plan.blocks)
    assert "peak" in plan.summary() and "conv" in plan.summary()


def test_plan_leaves_the_model_untouched() -> None:
    model = build("cnn_bn")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    flags = [m.training for m in model.modules()]

    plan_ntk(model, inputs_for("cnn_bn", 8, 1))

    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("budget_kib", [2048, 512, 256, 192])
def test_peak_estimate_stays_within_feasible_budgets(budget_kib: int) -> None:
    """Budgets above the result's own size (144 KiB here) give plans whose estimated peak fits."""
    model, x = build("mlp"), _mlp_inputs(64)
    plan = plan_ntk(model, x, x, kind="full", max_memory=budget_kib * 1024)

    assert plan.result_bytes == 64 * 64 * 3 * 3 * 4
    assert plan.fits, plan.summary()


def test_smaller_budgets_chunk_more() -> None:
    model, x = build("cnn_bn"), inputs_for("cnn_bn", 32, 1)
    roomy = plan_ntk(model, x, max_memory=256 * MiB)
    tight = plan_ntk(model, x, max_memory=256 * 1024)

    assert roomy.collect_sample_chunk == 32 and roomy.forward_passes == 1
    assert tight.forward_passes > roomy.forward_passes
    assert tight.peak_bytes < roomy.peak_bytes


@pytest.mark.parametrize("budget", [24 * 1024, 96 * 1024, 2 * MiB])
@pytest.mark.parametrize("implementation", ["auto", "factored", "layer_per_sample", "per_sample"])
@pytest.mark.parametrize("kind", ["trace", "full"])
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_chunked_plans_give_the_exact_kernel(cross: bool, kind: str, implementation: str, budget: int) -> None:
    """Sample blocks, layer groups, collection chunks and output chunks all assemble the same kernel."""
    model, x1 = build("cnn_bn"), inputs_for("cnn_bn", 12, 1)
    x2 = inputs_for("cnn_bn", 7, 2) if cross else None

    kernel = empirical_ntk(model, x1, x2, kind=kind, per_layer=True, dtype=torch.float64,
                           implementation=implementation, max_memory=budget)

    assert_kernels_close(kernel, reference_ntk(model, x1, x2, kind=kind, per_layer=True), 1e-10)


def test_tight_budget_splits_examples_and_layers() -> None:
    plan = plan_ntk(build("cnn_bn"), inputs_for("cnn_bn", 12, 1), inputs_for("cnn_bn", 7, 2),
                    dtype=torch.float64, max_memory=24 * 1024)

    assert plan.sample_blocks[0] < 12 or len(plan.layer_groups) > 1
    assert plan.collect_sample_chunk < 12


def test_infeasible_budget_warns_and_still_computes() -> None:
    model, x = build("mlp"), _mlp_inputs(4)

    with pytest.warns(NtkMemoryWarning, match="max_memory"):
        kernel = empirical_ntk(model, x, dtype=torch.float64, max_memory=1)

    assert_kernels_close(kernel, reference_ntk(model, x), 1e-10)


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_invalid_budget_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="max_memory"):
        empirical_ntk(build("mlp"), _mlp_inputs(2), max_memory=value)


def test_plan_is_the_same_at_every_call() -> None:
    """A cost estimate to size measurements by must not change from one call to the next."""
    model, x = build("transformer_block"), inputs_for("transformer_block", 6, 1)
    options = dict(max_memory=64 * MiB, output_projection=4, sketch=32)

    assert plan_ntk(model, x, **options) == plan_ntk(model, x, **options)
