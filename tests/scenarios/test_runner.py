"""The one runner: deterministic gradient descent, its hooks, and the outcome a monitored run reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from regimescope.scenarios import InitSpec, Scenario, Theory, get, loss, run_scenario, train
from regimescope.scenarios.catalogue import teacher_setup
from regimescope.sinks import read_jsonl


def _tiny() -> Scenario:
    """An upstream teacher-student run of 8 units and 40 steps (rich from the start)."""
    return Scenario(
        "test/tiny",
        "6.6",
        "8 units, 40 steps",
        Theory.RICH,
        lambda: teacher_setup(InitSpec(0.05, balance=1.0), 0.05, 8, 40),
    )


def test_training_is_deterministic_and_calls_back_after_every_step() -> None:
    setups = [_tiny().build() for _ in range(2)]
    steps: list[int] = []
    losses = [
        train(setup, torch.optim.SGD(setup.model.parameters(), lr=setup.lr), callback=callback)
        for setup, callback in zip(setups, (steps.append, None))
    ]
    assert steps == list(range(1, 41))
    assert len(losses[0]) == 40 and losses[0] == losses[1]
    assert torch.equal(setups[0].model.hidden.weight, setups[1].model.hidden.weight)


def test_training_takes_minibatches_and_sees_each_gradient_before_the_step() -> None:
    setup = _tiny().build()
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=setup.lr)
    seen: list[tuple[int, float]] = []

    def before_step(step: int) -> None:
        seen.append((step, setup.model.readout.weight.grad.norm().item()))

    rows = torch.arange(16)
    losses = train(setup, optimizer, steps=3, batch=lambda step: rows + 16 * step, after_backward=before_step)
    assert [step for step, _ in seen] == [0, 1, 2] and all(norm > 0 for _, norm in seen)
    with torch.no_grad():
        assert losses[-1] != loss(setup, rows + 32).item()  # the loss of step 2 was taken before its update


def test_the_loss_is_half_the_weighted_squared_residual() -> None:
    setup = _tiny().build()
    with torch.no_grad():
        expected = setup.loss_weight * 0.5 * ((setup.model(setup.inputs) - setup.targets) ** 2).sum()
        assert loss(setup).item() == pytest.approx(expected.item(), rel=1e-12)


def test_run_scenario_reports_the_monitor_verdicts_and_writes_its_logs(tmp_path: Path) -> None:
    outcome = run_scenario(_tiny(), logdir=tmp_path, measurements=4)
    assert len(outcome.losses) == 41 and outcome.losses[-1] < outcome.losses[0]
    assert outcome.label in ("lazy", "transitional", "rich") and 0 <= outcome.score <= 1
    assert outcome.distance == outcome.final("regimescope/kernel/distance_from_init")
    labelled = [r.step for r in outcome.history if "regimescope/regime/label" in r.scalars]
    assert labelled == [0, 1, 2, 4, 8, 10, 20, 30, 40]
    assert outcome.agrees == Theory.RICH.agrees(outcome.early_label, outcome.label)
    assert outcome.seconds > 0 and outcome.explanation.startswith(f"**{outcome.label}**")
    written = read_jsonl(tmp_path / "regimescope.jsonl")
    assert [r.step for r in written] == [r.step for r in outcome.history]


@pytest.mark.parametrize(
    ("theory", "early", "final", "agrees"),
    [
        (Theory.LAZY, "lazy", "lazy", True),
        (Theory.LAZY, "lazy", "transitional", False),
        (Theory.RICH, "lazy", "rich", True),
        (Theory.RICH, "rich", "transitional", False),
        (Theory.DELAYED_RICH, "lazy", "rich", True),
        (Theory.DELAYED_RICH, "rich", "rich", False),
        (Theory.LAZY_EARLY, "lazy", "transitional", True),
        (Theory.LAZY_EARLY, "transitional", "rich", False),
    ],
)
def test_theory_agrees_with_the_early_and_final_labels(theory: Theory, early: str, final: str, agrees: bool) -> None:
    assert theory.agrees(early, final) is agrees


def test_names_and_lookup() -> None:
    assert str(Theory.LAZY_EARLY) == "lazy early"
    assert get("teacher/wide-ntk").run == "wide-ntk"
    with pytest.raises(KeyError, match="teacher/balanced"):
        get("teacher/medium")
