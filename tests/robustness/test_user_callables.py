"""Every callable a user hands the monitor, raising in the middle of a run: the error never reaches the training
loop (it is logged once, training stays bit-identical), and with ``strict=True`` it does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import torch

import regimescope as rs
from regimescope.alerts import AlertRule, Finding, Observation
from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.schedule import LogThenEvery
from tests.robustness._faults import tracebacks
from tests.robustness._logs import EVERY, fresh, monitor, same_parameters, steps, train, unmonitored_parameters

STEPS, LIT_AFTER = 24, 9
MEASURED = [0, 1, 2, 4, 8, 12, 16, 20, 24]
BEFORE = [0, 1, 2, 4, 8]
"""The measurements before the first one after step 9, where a failing stage pauses measuring."""


class UserBug(Exception):
    """What the user's callable raises."""


class Fuse:
    """A no-op until lit, then raises :class:`UserBug` at every call."""

    lit = False

    def __call__(self, *args: Any) -> None:
        if self.lit:
            raise UserBug("a bug in the user's callable")


class FusedRule(AlertRule):
    """A user alert rule that calls the fuse at every measurement and finds nothing."""

    kind = "fused"
    meaning = "a test rule."

    def __init__(self, fuse: Fuse) -> None:
        super().__init__()
        self.fuse = fuse

    def findings(self, observation: Observation) -> list[Finding]:
        self.fuse()
        return []


class Tick(AlertRule):
    """A user alert rule that fires at every measurement."""

    kind = "tick"
    meaning = "a test rule."

    def findings(self, observation: Observation) -> list[Finding]:
        return [Finding(key=str(observation.step), message="tick")]


class FusedIndicator(Indicator):
    """A user indicator whose ``hook`` (``"observe_step"`` or ``"compute"``) calls the fuse."""

    name = "fused"
    needs = frozenset()
    reference = Reference.NONE

    def __init__(self, fuse: Fuse, hook: str) -> None:
        self.fuse, self.hook = fuse, hook

    def observe_step(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
        if self.hook == "observe_step":
            self.fuse()

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> rs.Record:
        if self.hook == "compute":
            self.fuse()
        return rs.Record(current.step)


def _with_indicator(indicator: Indicator) -> dict[str, Any]:
    return {"indicators": [*default_indicators(), indicator]}


CASES: dict[str, tuple[Callable[[Fuse], dict[str, Any]], list[int]]] = {
    "schedule": (lambda fuse: {"schedule": lambda step: fuse() or LogThenEvery(EVERY)(step)}, BEFORE),
    "output_fn": (lambda fuse: {"output_fn": lambda out: fuse() or out}, BEFORE),
    "observe_step": (lambda fuse: _with_indicator(FusedIndicator(fuse, "observe_step")), BEFORE),
    "indicator_compute": (lambda fuse: _with_indicator(FusedIndicator(fuse, "compute")), BEFORE),
    "alert_rule": (lambda fuse: {"alert_rules": [FusedRule(fuse)]}, MEASURED),
    "on_alert": (lambda fuse: {"alert_rules": [Tick()], "on_alert": fuse}, MEASURED),
    "callback_sink": (lambda fuse: {"sinks": [rs.CallbackSink(fuse)]}, MEASURED),
}
"""Each callable, the monitor options that hand it over, and the steps measured when it fails after step 9: a failing
stage of the measurement pauses measuring; a failing rule, alert callable or sink is left out and measuring goes on."""


@pytest.mark.parametrize("case", list(CASES))
def test_a_user_callable_that_raises_is_logged_once_and_never_reaches_the_loop(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    options, measured = CASES[case]
    fuse = Fuse()
    model, optimizer = fresh()
    mon = monitor(model, optimizer, **options(fuse)).attach()
    with caplog.at_level(logging.ERROR):
        train(model, optimizer, LIT_AFTER)
        fuse.lit = True
        train(model, optimizer, STEPS - LIT_AFTER)
        mon.close()
    assert steps(mon.history) == measured
    assert mon.paused == (measured == BEFORE)
    (logged,) = tracebacks(caplog)
    assert logged.exc_info[0] is UserBug
    assert same_parameters(model, unmonitored_parameters(STEPS))


@pytest.mark.parametrize("case", list(CASES))
def test_with_strict_the_user_callables_error_reaches_the_loop(case: str) -> None:
    options, _ = CASES[case]
    fuse = Fuse()
    model, optimizer = fresh()
    mon = monitor(model, optimizer, strict=True, **options(fuse)).attach()
    train(model, optimizer, LIT_AFTER)
    fuse.lit = True
    with pytest.raises(UserBug):
        train(model, optimizer, STEPS - LIT_AFTER)
    mon.close(final=False)
