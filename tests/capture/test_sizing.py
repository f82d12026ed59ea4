"""Sizing a measurement: on a deterministic cost model (a fake timer reading what each trial computes) the plan is
the most exact candidate within the target, many outputs are never traced exactly, the probe shrinks only when
needed, explicit options are kept, and with ``max_overhead=None`` nothing is reduced. One real sizing on a small
model checks the plan reaches the monitor, its records and its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import regimescope as rs
import regimescope.capture.sizing as sizing
from regimescope.capture import CaptureConfig
from regimescope.capture.sizing import MeasurementPlan, plan_measurement
from regimescope.probe import Probe


class CostModel:
    """Stands in for the timer: each trial records what it computes; the cost of that is returned instead of time.

    A probe pass costs 1. A kernel of ``w`` backward passes per example on ``n`` examples costs
    ``(base + per_output * w) * (n / 64) ** growth``.
    """

    def __init__(self, base: float, per_output: float, growth: float = 1.5) -> None:
        self.base, self.per_output, self.growth = base, per_output, growth
        self.trials: list[tuple[int, int | None]] = []
        self._last: tuple[str, int, int | None] = ("pass", 64, None)

    def ntk(self, model: nn.Module, inputs: torch.Tensor, **options: Any) -> None:
        self._last = ("kernel", inputs.shape[0], options["output_projection"])
        self.trials.append((inputs.shape[0], options["output_projection"]))

    def cost(self, outputs: int, n: int, m: int | None) -> float:
        width = outputs if m is None else m
        return (self.base + self.per_output * width) * (n / 64) ** self.growth

    def timer(self, outputs: int) -> Callable[[Callable[[], Any]], float]:
        def timed(fn: Callable[[], Any]) -> float:
            self._last = ("pass", 64, None)
            fn()
            kind, n, m = self._last
            return 1.0 if kind == "pass" else self.cost(outputs, n, m)

        return timed


def _plan(monkeypatch: pytest.MonkeyPatch, cost: CostModel, outputs: int, **options: Any) -> MeasurementPlan:
    monkeypatch.setattr(sizing, "empirical_ntk", cost.ntk)
    model = nn.Linear(4, outputs)
    probe = Probe(torch.randn(64, 4))
    return plan_measurement(model, probe, CaptureConfig(), outputs, timer=cost.timer(outputs), **options)


def test_a_cheap_model_gets_the_exact_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    cost = CostModel(0.2, 0.1)
    plan = _plan(monkeypatch, cost, outputs=10, max_overhead=0.05)
    assert (plan.examples, plan.output_projection) == (64, None)
    assert not plan.reduced and plan.pass_seconds == 1.0
    assert plan.estimated_seconds == pytest.approx(cost.cost(10, 64, None))
    assert max(n for n, _ in cost.trials) <= 32  # timed on small subsets only


def test_many_outputs_are_never_traced_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    cost = CostModel(0.2, 0.1)
    plan = _plan(monkeypatch, cost, outputs=2048, max_overhead=0.05)
    assert plan.output_projection == 8 and plan.examples == 64 and plan.reduced
    assert all(m is not None for _, m in cost.trials)
    assert "2048 outputs" in " ".join(plan.reasons)


def test_the_most_exact_projection_within_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    # (0.2 + 0.4 m) on the whole probe: m = 4 costs 1.8 <= 2 passes, m = 8 costs 3.4
    plan = _plan(monkeypatch, CostModel(0.2, 0.4), outputs=100, max_overhead=0.05)
    assert plan.output_projection == 4
    assert plan.estimated_seconds == pytest.approx(1.8)


def test_the_probe_shrinks_only_when_even_the_cheapest_projection_is_too_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    # whole probe, m = 2: 3.6 > 2; half the probe, m = 8: (2 + 8 * 0.8) / 2^2 = 2.1 > 2, m = 4: 1.3 fits
    cost = CostModel(2.0, 0.8, growth=2.0)
    plan = _plan(monkeypatch, cost, outputs=100, max_overhead=0.05)
    assert (plan.examples, plan.output_projection) == (32, 4)
    assert any("32 examples" in reason for reason in plan.reasons)


def test_when_nothing_fits_the_cheapest_is_taken_and_the_budget_spaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(monkeypatch, CostModel(50.0, 1.0), outputs=100, max_overhead=0.05)
    assert (plan.examples, plan.output_projection) == (16, 2)
    assert "spaces measurements further" in plan.reasons[-1]


def test_explicit_options_are_kept_and_no_budget_reduces_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    cost = CostModel(50.0, 1.0)
    fixed = _plan(monkeypatch, cost, outputs=100, max_overhead=0.05, output_projection=16, measured_examples=64)
    assert (fixed.examples, fixed.output_projection) == (64, 16) and cost.trials == []
    exact = _plan(monkeypatch, cost, outputs=2048, max_overhead=None)
    assert (exact.examples, exact.output_projection, exact.reduced) == (64, None, False) and cost.trials == []
    given = _plan(monkeypatch, cost, outputs=2048, max_overhead=None, output_projection=8)
    assert given.output_projection == 8


@pytest.mark.parametrize(("argument", "value"), [("output_projection", 0), ("output_projection", "all"),
                                                 ("measured_examples", 1), ("measured_examples", None)])
def test_invalid_choices_are_refused(monkeypatch: pytest.MonkeyPatch, argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=argument):
        _plan(monkeypatch, CostModel(0.2, 0.1), outputs=10, max_overhead=0.05, **{argument: value})


def test_the_plan_reaches_the_monitor_its_records_and_its_state(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 40))  # 40 outputs: projected
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(32, 6)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(model, rs.Probe(x), optimizer=optimizer, sinks=[sink], max_overhead=0.05).attach()
    assert monitor.plan.output_projection in sizing.PROJECTIONS and monitor.plan.outputs == 40
    steps, notes = sink.texts("regimescope/cost/notes")
    assert steps[0] == 0 and monitor.plan.describe() in notes[0]
    state = monitor.state_dict()
    assert MeasurementPlan.from_state(state["plan"]) == monitor.plan
    resumed = rs.RegimeMonitor(model, rs.Probe(x), optimizer=optimizer, max_overhead=0.05)
    resumed.load_state_dict(state)
    monitor.close()
    resumed.attach()
    assert resumed.plan == monitor.plan  # a resumed run keeps the plan, so its kernels stay comparable
    resumed.close()
