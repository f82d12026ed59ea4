"""The overhead budget on a hand-driven clock: when a measurement may start, deferrals, the steady interval."""

from __future__ import annotations

import pytest

from regimescope.budget import UNSEEN_SHARE, OverheadBudget, check_overhead


def test_a_measurement_starts_only_while_the_share_stays_within_budget() -> None:
    budget = OverheadBudget(0.1)
    budget.start(0.0)
    budget.spend(10.0, measurement=True)  # step 0 at attach: 10 s
    # next: 10 + 10 <= (1 - 0.1) 0.1 (w - 10), a tenth of the budget kept for what the clock cannot see: w >= 232.2
    assert UNSEEN_SHARE == 0.1
    assert not budget.allows(232.0)
    assert budget.allows(233.0) and budget.training_seconds(233.0) == pytest.approx(223.0)
    budget.spend(10.0, measurement=True)
    assert budget.overhead(243.0) == pytest.approx(20 / 223)  # the run took 9% longer than its 223 s of training


def test_without_a_budget_everything_is_allowed() -> None:
    budget = OverheadBudget(None)
    budget.start(0.0)
    budget.spend(1e6, measurement=True)
    assert budget.allows(0.0)
    assert budget.steady_interval(1.0) is None


def test_the_predicted_cost_is_the_median_of_the_last_three_measurements() -> None:
    budget = OverheadBudget(0.05)
    assert budget.predicted_cost == 0.0
    for seconds in (1.0, 9.0, 2.0, 3.0):
        budget.spend(seconds, measurement=True)
    assert budget.predicted_cost == 3.0  # median of 9, 2, 3
    budget.spend(100.0)  # an observation, not a measurement: counted, not predicted
    assert budget.predicted_cost == 3.0 and budget.spent == pytest.approx(115.0)


def test_steady_interval_matches_the_budget_equation() -> None:
    budget = OverheadBudget(0.05)
    budget.spend(2.0, measurement=True)
    interval = budget.steady_interval(1.0)  # c / ((1 - u) f t) = 2 / (0.9 * 0.05) = 44.4
    assert interval == 45
    assert 2.0 / (interval * 1.0) <= 0.9 * 0.05


def test_state_round_trip_and_argument_checks() -> None:
    budget = OverheadBudget(0.05)
    budget.spend(1.5, measurement=True)
    budget.deferred, budget.pending = 4, 3
    other = OverheadBudget(0.05)
    other.load_state_dict(budget.state_dict())
    assert other.predicted_cost == 1.5 and other.deferred == 4 and other.pending == 3
    older = OverheadBudget(0.05)
    older.load_state_dict({"costs": [1.0], "deferred": 2})  # a checkpoint from before owed measurements were kept
    assert older.pending == 0
    for bad in (0, 1, 1.5, -0.1, True, "5%"):
        with pytest.raises(ValueError, match="max_overhead"):
            check_overhead(bad)
    assert check_overhead(None) is None


def test_one_time_work_is_counted_but_not_predicted() -> None:
    budget = OverheadBudget(0.05)
    budget.spend(10.0, measurement=True, one_time=7.0)  # step 0: its forecast is not repeated
    assert budget.spent == 10.0 and budget.predicted_cost == 3.0
