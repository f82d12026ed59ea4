"""Alert rules and noise estimates resume from their state: split anywhere, they alert as an uninterrupted run."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch

from regimescope.alerts import AlertRule, AlertWatch, KernelJump, Observation, RegimeShift, Threshold
from tests.alerts._observations import run_rule, series, verdicts

VELOCITY = "regimescope/kernel/velocity"
LAYER = "regimescope/kernel/distance_from_init/"


def _reloaded(state: Any) -> Any:
    """``state`` after ``torch.save`` and a ``weights_only`` load: plain containers survive it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _jumps() -> list[Observation]:
    velocities = [1.0, 1.1, 0.9, 1.0, 6.0, 6.2, 1.0, 0.9, 7.0]
    return series(VELOCITY, velocities, noise=0.05, extra={LAYER + "fc1": [0.1 * i for i in range(9)],
                                                          LAYER + "fc2": [0.3 * i for i in range(9)]})


CASES: dict[str, tuple[Callable[[], AlertRule], Callable[[], list[Observation]]]] = {
    "regime_shift": (lambda: RegimeShift(patience=2, cooldown=2),
                     lambda: verdicts(["lazy", "transitional", "transitional", "rich", "rich", "lazy", "lazy", "rich"])),
    "kernel_jump": (lambda: KernelJump(cooldown=1), _jumps),
    "threshold": (lambda: Threshold(VELOCITY, above=2.0, patience=2), _jumps),
}


@pytest.mark.parametrize("split", [1, 3, 5])
@pytest.mark.parametrize("case", CASES)
def test_a_resumed_rule_alerts_like_an_uninterrupted_one(case: str, split: int) -> None:
    make, observations = CASES[case]
    expected = [(a.step, a.message) for a in run_rule(make(), observations())]
    assert expected, "the sequence must make the rule alert"
    first, second = make(), make()
    seen = observations()
    alerts = run_rule(first, seen[:split])
    second.load_state_dict(_reloaded(first.state_dict()))
    alerts += run_rule(second, seen[split:])
    assert [(a.step, a.message) for a in alerts] == expected


def test_the_watch_restores_rules_by_position_and_starts_afresh_when_they_changed(
        caplog: pytest.LogCaptureFixture) -> None:
    seen = verdicts(["lazy", "rich", "rich", "lazy"])
    watch = AlertWatch([RegimeShift()])
    for observation in seen[:2]:
        watch.evaluate(observation)
    state = _reloaded(watch.state_dict())
    resumed = AlertWatch([RegimeShift()])
    resumed.load_state_dict(state)
    assert [a.step for o in seen[2:] for a in resumed.evaluate(o)] == [30]
    other = AlertWatch([KernelJump()])
    with caplog.at_level("WARNING", logger="regimescope.alerts"):
        other.load_state_dict(state)
    assert "start afresh" in caplog.text
