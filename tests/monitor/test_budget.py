"""The monitor keeps its overhead budget: on a fake clock (each training step 1 s, each measurement 10 s) it defers
scheduled measurements, says so once, stays within its share, and with ``max_overhead=None`` follows the schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
import regimescope.budget as budget_module
from regimescope.capture import Need, Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.record import Record

STEP_SECONDS = 1.0
MEASURE_SECONDS = 10.0
SETUP_SECONDS = 30.0
OBSERVE_SECONDS = 0.085


class Clock:
    """A clock the test advances, in place of :func:`regimescope.budget.now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Costly(Indicator):
    """Makes every measurement take ``MEASURE_SECONDS`` on the fake clock."""

    name = "costly"
    needs = frozenset({Need.WEIGHTS})
    reference = Reference.NONE

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        self.clock.now += MEASURE_SECONDS
        return Record(current.step)


class CostlySetup(Costly):
    """Also makes ``attach()``'s set-up take ``SETUP_SECONDS`` before the step-0 measurement."""

    name = "costly_setup"

    def setup(self, context: Context) -> None:
        self.clock.now += SETUP_SECONDS



class CostlyObservation(Costly):
    """Also reads every optimizer step it is shown, for ``OBSERVE_SECONDS``, and keeps the ``steps`` it was told."""

    name = "costly_observation"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.observed: list[tuple[int, int]] = []

    def observe_step(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
        self.clock.now += OBSERVE_SECONDS
        self.observed.append((round(self.clock.now), steps))



@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(budget_module, "now", fake.perf_counter)
    return fake


def _run(
    clock: Clock, max_overhead: float | None, steps: int = 400, costly: type[Costly] = Costly
) -> tuple[rs.RegimeMonitor, rs.MemorySink]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(
        model, rs.Probe(x, y), optimizer=optimizer, sinks=[sink], every=50, max_overhead=max_overhead,
        indicators=[*default_indicators(), costly(clock)],
    ).attach()
    for _ in range(steps):
        clock.now += STEP_SECONDS
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return monitor, sink


def test_scheduled_measurements_wait_until_training_has_earned_them(clock: Clock) -> None:
    monitor, sink = _run(clock, max_overhead=0.1)
    steps = [r.step for r in monitor.history]
    # step 0 is the reference; the next measurement needs 10 + 10 <= 0.9 * 0.1 (w - 10), a tenth of the budget
    # kept for what the clock cannot see: 222.2 s of training, step 223.
    assert steps[:2] == [0, 223]
    assert len(steps) >= 3 and all(b - a >= 50 for a, b in zip(steps[1:], steps[2:]))
    overhead = monitor.history[-1].scalars["regimescope/cost/fraction"]
    assert overhead <= 0.1 + MEASURE_SECONDS / 400
    assert 0.05 < monitor.overhead <= 0.1  # the monitor's own account, at the end of training
    assert monitor.history[-1].scalars["regimescope/cost/budget_deferred"] >= 7  # 1, 2, 4, ..., 32 and 50...
    steps_noted, notes = sink.texts("regimescope/cost/notes")
    assert steps_noted[0] == 0 and notes[0].startswith("**measurement**")  # the plan, with the first measurement
    deferrals = [note for note in notes if "deferred" in note]
    assert len(deferrals) == 1 and "10%" in deferrals[0] and "about every 112 steps" in deferrals[0]
    assert "max_overhead=None" in deferrals[0]
    monitor.close()



class Cheap(Costly):
    """Measurements of 2 s: the budget holds back the early log-spaced ones, then allows one every 22 to 23 steps."""

    name = "cheap"

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        self.clock.now += 2.0
        return Record(current.step)


def test_deferred_measurements_are_taken_later_not_dropped(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=0.1, steps=400, costly=Cheap)
    steps = [r.step for r in monitor.history]
    asked = [s for s in range(401) if monitor.schedule(s)]  # 0, 1, 2, 4, ..., 32, 50, 100, ..., 400: 14
    assert len(steps) == len(asked)  # every scheduled measurement made, each when training had earned it
    early = [s for s in steps if s < 50]
    assert early[0] == 0 and all(b - a >= 20 for a, b in zip(steps[1:], steps[2:]))
    assert steps[-1] == 400 and monitor.overhead <= 0.1
    assert monitor.history[-1].scalars["regimescope/cost/budget_deferred"] >= 6  # 1, 2, 4, 8, 16, 32
    monitor.close()
    assert [r.step for r in monitor.history] == steps  # nothing owed at the end: close() measures nothing more


def test_close_does_not_measure_the_last_step_twice(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=0.1, steps=67, costly=Cheap)  # step 67 pays one of several owed
    assert [r.step for r in monitor.history] == [0, 45, 67] and monitor._budget.pending > 0
    monitor.close()
    assert [r.step for r in monitor.history] == [0, 45, 67] and monitor._budget.pending == 0


def test_close_keeps_the_budget_once_a_trained_step_was_measured(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=0.1, steps=80, costly=Cheap)  # the next one is earned at step 89
    assert [r.step for r in monitor.history] == [0, 45, 67] and monitor._budget.pending > 0
    monitor.close()
    assert [r.step for r in monitor.history] == [0, 45, 67] and monitor.overhead <= 0.1

def test_close_takes_the_deferred_measurement_at_the_last_step(clock: Clock) -> None:
    monitor, sink = _run(clock, max_overhead=0.1, steps=100)  # too short for the budget to allow step 1, 2, 4, ...
    assert [r.step for r in monitor.history] == [0]
    monitor.close()
    assert [r.step for r in monitor.history] == [0, 100]  # the run ends with a verdict for its last step
    assert sink.records[-1].step == 100 and monitor.regime.step == 100
    monitor.close()  # nothing more to take
    assert [r.step for r in monitor.history] == [0, 100]


def test_a_with_block_left_by_an_exception_closes_without_measuring(clock: Clock) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(16, 4)
    monitor = rs.RegimeMonitor(model, rs.Probe(x), optimizer=optimizer, every=50, max_overhead=0.1,
                               indicators=[*default_indicators(), Costly(clock)])
    with pytest.raises(KeyboardInterrupt), monitor:
        for _ in range(10):
            clock.now += STEP_SECONDS
            model(x).sum().backward()
            optimizer.step()
        raise KeyboardInterrupt
    assert [r.step for r in monitor.history] == [0]


def test_attach_counts_against_the_budget(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=0.1, steps=580, costly=CostlySetup)
    # 30 s of set-up and the 10 s step-0 measurement: the next needs 40 + 10 <= 0.09 (w - 40), 555.6 s of training.
    assert [r.step for r in monitor.history][:2] == [0, 556]
    monitor.close()


def test_per_step_observations_are_sampled_when_each_costs_more_than_a_tenth_of_the_budget(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=0.1, steps=100, costly=CostlyObservation)
    (observing,) = [i for i in monitor.indicators if isinstance(i, CostlyObservation)]
    steps = [s for _, s in observing.observed]
    # 0.085 s per observation against a tenth of 10% of a 1 s step: every ceil(0.085 / 0.01) = 9th step, each
    # standing for itself and the 8 after it; the first (before any cost is known) stands for itself.
    assert steps[0] == 1 and set(steps[1:]) == {9}
    assert sum(steps) >= 100 and sum(steps) - steps[-1] < 100  # every step stood for, none twice
    monitor.close()


def test_without_a_budget_every_step_is_observed(clock: Clock) -> None:
    monitor, _ = _run(clock, max_overhead=None, steps=20, costly=CostlyObservation)
    (observing,) = [i for i in monitor.indicators if isinstance(i, CostlyObservation)]
    assert [s for _, s in observing.observed] == [1] * 20
    monitor.close()


def test_without_a_budget_the_schedule_is_kept_whatever_it_costs(clock: Clock) -> None:
    monitor, sink = _run(clock, max_overhead=None, steps=120)
    assert [r.step for r in monitor.history] == [0, 1, 2, 4, 8, 16, 32, 50, 100]
    assert not any("deferred" in note for note in sink.texts("regimescope/cost/notes")[1])
    monitor.close()


def test_the_step0_forecast_is_counted_but_does_not_predict_later_measurements(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regimescope.verdict.judge import RegimeJudge

    forecast = RegimeJudge.make_forecast

    def slow_forecast(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        clock.now += 50.0
        forecast(self, *args, **kwargs)

    monkeypatch.setattr(RegimeJudge, "make_forecast", slow_forecast)
    monitor, _ = _run(clock, max_overhead=0.1, steps=0)
    assert monitor._budget.spent == pytest.approx(MEASURE_SECONDS + 50.0)
    assert monitor._budget.predicted_cost == pytest.approx(MEASURE_SECONDS)
    monitor.close()


def test_writing_the_records_counts_against_the_budget(clock: Clock) -> None:
    class SlowSink(rs.MemorySink):
        def write(self, record: Record) -> None:
            clock.now += 3.0
            super().write(record)

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(8, 4)
    monitor = rs.RegimeMonitor(
        model, rs.Probe(x, torch.randn(8, 2)), sinks=[SlowSink()], indicators=[*default_indicators(), Costly(clock)]
    ).attach()
    assert monitor._budget.spent == pytest.approx(MEASURE_SECONDS + 3.0)
    monitor.close()


def test_closing_the_sinks_counts_against_the_budget(clock: Clock) -> None:
    class SlowToClose(rs.MemorySink):
        def close(self) -> None:
            clock.now += 5.0  # a TensorBoard writer draining its queue, a file flushed to a slow disk
            super().close()

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = rs.RegimeMonitor(model, rs.Probe(torch.randn(16, 4)), optimizer=optimizer, sinks=[SlowToClose()],
                               every=50, max_overhead=0.1, indicators=[*default_indicators(), Cheap(clock)]).attach()
    for _ in range(100):
        clock.now += STEP_SECONDS
        model(torch.randn(16, 4)).sum().backward()
        optimizer.step()
    spent = monitor._budget.spent
    monitor.close(final=False)
    assert monitor._budget.spent == pytest.approx(spent + 5.0)
    assert monitor.overhead == pytest.approx(monitor._budget.spent / 100)  # 100 s of training
