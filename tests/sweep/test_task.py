"""How grid keys reach the factories, how a point is built, and what fails before any training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.knobs import multipliers
from regimescope.sweep import Axis, SweepTask, default_step, parse_grid
from tests.sweep import _task


def _task_with(**overrides) -> SweepTask:
    x, y = _task.data()
    fields = {
        "make_model": _task.make_model,
        "make_optimizer": _task.make_optimizer,
        "data": [(x, y)],
        "probe": rs.Probe(x, y),
    }
    return SweepTask(**{**fields, **overrides})


def test_keys_reach_the_factories_that_name_them_and_builtins_are_applied_in_order() -> None:
    seen = {}

    def make_optimizer(model: nn.Module, lr: float, init_scale: float) -> torch.optim.Optimizer:
        seen.update(lr=lr, init_scale=init_scale)
        return torch.optim.SGD(model.parameters(), lr=lr)

    task = _task_with(make_optimizer=make_optimizer)
    values = {"width": 8, "lr": 0.5, "init_scale": 0.1, "balance": 0.5, "output_scale": 2.0}
    task.check(tuple(Axis(k, (v,)) for k, v in values.items()))
    assert task.arguments("model", values) == {"width": 8}
    model, optimizer = task.build(values)
    assert seen == {"lr": 0.5, "init_scale": 0.1} and optimizer.param_groups[0]["lr"] == 0.5
    torch.manual_seed(0)
    reference = _task.make_model(8)
    torch.manual_seed(0)
    built, _ = _task_with().build({"width": 8, "init_scale": 0.1})
    torch.testing.assert_close(built[0].weight, 0.1 * reference[0].weight)
    assert type(model).__name__ == "OutputScaled" and model.alpha == 2.0


def test_a_parametrisation_builds_at_the_width_relative_to_the_smallest_one() -> None:
    task = _task_with()
    model, _ = task.build({"parametrisation": "ntk", "width": 64}, widths=(16, 64))
    assert multipliers(model) == {"2": 0.5}
    model, _ = _task_with(base_width=64).build({"parametrisation": "mup", "width": 64}, widths=(16, 64))
    assert multipliers(model) == {}


@pytest.mark.parametrize(
    "grid, overrides, message",
    [
        ({"depth": [1, 2]}, {}, "no built-in knob"),
        ({"parametrisation": ["ntk"]}, {}, "needs a `width`"),
        ({"lr": [0.1]}, {"steps": 0}, "`steps`"),
        ({"lr": [0.1]}, {"probe": torch.zeros(3)}, "regimescope.Probe"),
        ({"lr": [0.1]}, {"train_step": 3}, "`train_step` must be callable"),
    ],
)
def test_a_grid_or_task_that_cannot_work_fails_before_training(grid, overrides, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        _task_with(**overrides).check(parse_grid(grid))


def test_a_factory_taking_kwargs_receives_every_key_but_the_builtin_knobs() -> None:
    def make_model(**options) -> nn.Module:
        assert options == {"depth": 2}
        return _task.make_model()

    task = _task_with(make_model=make_model)
    task.check(parse_grid({"depth": [2], "init_scale": [0.5]}))
    task.build({"depth": 2, "init_scale": 0.5})


def test_the_default_step_fits_regression_and_classification_batches() -> None:
    x = torch.randn(8, 4)
    for targets, outputs in ((torch.randn(8, 1), 1), (torch.randint(0, 3, (8,)), 3)):
        model = nn.Linear(4, outputs)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = [default_step(model, optimizer, (x, targets)) for _ in range(5)]
        assert losses[-1] < losses[0]


def test_empty_data_is_reported() -> None:
    with pytest.raises(ValueError, match="no batch"):
        next(_task_with(data=[]).batches())
