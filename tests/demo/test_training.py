"""The demo's training loop: deterministic full-batch gradient descent, callbacks, injected model and optimiser."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from regimescope.demo import Budget, ScenarioSpec, get_scenario, make_model, make_optimizer, train


def _tiny(name: str) -> ScenarioSpec:
    spec = get_scenario(name)
    return dataclasses.replace(spec, quick=Budget(width=8, steps=20), n_train=32)


def test_training_is_deterministic_and_calls_back_after_every_step() -> None:
    spec = _tiny("upstream")
    steps: list[int] = []
    model, history = train(spec, quick=True, callback=steps.append)
    again, history_again = train(spec, quick=True)
    assert steps == list(range(1, 21))
    assert len(history.losses) == 21
    assert history.losses == history_again.losses
    assert torch.equal(model.hidden.weight, again.hidden.weight)
    assert history.seconds > 0


def test_training_uses_the_given_model_and_optimizer() -> None:
    spec = _tiny("balanced")
    model = make_model(spec, quick=True)
    optimizer = make_optimizer(spec, model)
    trained, _ = train(spec, quick=True, model=model, optimizer=optimizer)
    assert trained is model
    assert optimizer.param_groups[0]["lr"] == spec.lr


def test_optimizer_without_model_is_rejected() -> None:
    spec = _tiny("balanced")
    optimizer = make_optimizer(spec, make_model(spec, quick=True))
    with pytest.raises(ValueError, match="without `model`"):
        train(spec, quick=True, optimizer=optimizer)
