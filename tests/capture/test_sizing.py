"""Sizing a measurement: the first plan, and its revision from the step-0 measurement's cost (the most exact
candidate predicted within the target; many outputs never traced exactly; the probe shrinks only when needed;
explicit options kept; nothing reduced with ``max_overhead=None``). One real run checks the plan reaches the
monitor, its records and its state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture.config import CaptureConfig
from regimescope.capture.sizing import PROJECTIONS, MeasurementPlan, Sizing, probe_pass
from tests.robustness._attach_models import build, inputs_of, weight_versions, weights_untouched


def _sizing(outputs: int, **options: object) -> Sizing:
    options.setdefault("max_overhead", 0.05)
    return Sizing(64, outputs, **options)


@pytest.mark.parametrize(("outputs", "first"), [(1, None), (3, None), (4, None), (10, 4), (2048, 4)])
def test_an_untimed_first_plan_is_the_most_exact_of_at_most_four_passes_on_the_whole_probe(outputs, first) -> None:
    plan = _sizing(outputs).first()
    assert (plan.examples, plan.output_projection) == (64, first)


@pytest.mark.parametrize(
    ("outputs", "first"),
    [
        (1, (16, None)),  # the prior, in probe passes, 2 (1 + w) (n / 64)^1.5 against 1: 4 on 64, 1.41 on 32, 0.5 on 16
        (3, (16, None)),  # 8 on 64, 2.83 on 32, 1 on 16
        (10, (16, 2)),  # exact (w = 10), m = 8 and m = 4 are over 1 even on 16 examples: 2.75, 2.25, 1.25; m = 2: 0.75
        (2048, (16, 2)),
    ],
)
def test_a_timed_first_plan_is_the_most_exact_the_prior_puts_within_the_target(outputs: int, first) -> None:
    for pass_seconds in (0.01, 3.0):  # the prior and the target are both in probe passes
        plan = _sizing(outputs).first(pass_seconds=pass_seconds)
        assert (plan.examples, plan.output_projection) == first and plan.pass_seconds == pass_seconds


def test_a_timed_first_plan_with_nothing_to_choose_is_the_given_one() -> None:
    plan = _sizing(100, output_projection=16, measured_examples=64).first(pass_seconds=1.0)
    assert (plan.examples, plan.output_projection) == (64, 16)


def test_a_cheap_model_gets_the_exact_kernel() -> None:
    sizing = _sizing(10)
    plan = sizing.revise(sizing.first(), seconds=0.4, pass_seconds=1.0)  # exact: 0.4 * 11 / 5 = 0.88 <= 1
    assert (plan.examples, plan.output_projection) == (64, None)
    assert not plan.reduced and plan.pass_seconds == 1.0 and plan.estimated_seconds == pytest.approx(0.88)


def test_many_outputs_are_never_traced_exactly() -> None:
    sizing = _sizing(2048)
    plan = sizing.revise(sizing.first(), seconds=0.5, pass_seconds=1.0)  # m = 8: 0.5 * 9 / 5 = 0.9
    assert (plan.examples, plan.output_projection) == (64, 8) and plan.reduced
    assert "2048 outputs" in " ".join(plan.reasons)


def test_a_plan_that_fits_keeps_its_measured_cost() -> None:
    sizing = _sizing(100)
    first = sizing.first()
    plan = sizing.revise(first, seconds=0.9, pass_seconds=1.0)  # m = 8 would cost 1.62
    assert (plan.examples, plan.output_projection, plan.estimated_seconds) == (64, 4, 0.9)


def test_the_probe_shrinks_only_when_even_the_cheapest_projection_is_too_slow() -> None:
    # m = 2 on 64: 3 * 3 / 5 = 1.8 > 1; on 32 examples (x 2^-1.5): m = 4 1.06 > 1, m = 2 0.64 fits
    sizing = _sizing(10)
    plan = sizing.revise(sizing.first(), seconds=3.0, pass_seconds=1.0)
    assert (plan.examples, plan.output_projection) == (32, 2)
    assert any("32 examples" in reason for reason in plan.reasons)


def test_when_nothing_fits_the_cheapest_is_taken_and_the_budget_spaces_it() -> None:
    sizing = _sizing(100)
    plan = sizing.revise(sizing.first(), seconds=500.0, pass_seconds=1.0)
    assert (plan.examples, plan.output_projection) == (16, 2)
    assert "spaces measurements further" in plan.reasons[-1]


def test_explicit_options_are_kept_and_no_budget_reduces_nothing() -> None:
    fixed = _sizing(100, output_projection=16, measured_examples=64)
    assert not fixed.adaptive and (fixed.first().examples, fixed.first().output_projection) == (64, 16)
    exact = Sizing(64, 2048, max_overhead=None)
    assert not exact.adaptive
    assert (exact.first().examples, exact.first().output_projection, exact.first().reduced) == (64, None, False)
    assert Sizing(64, 2048, max_overhead=None, output_projection=8).first().output_projection == 8


@pytest.mark.parametrize(("argument", "value"), [("output_projection", 0), ("output_projection", "all"),
                                                 ("measured_examples", 1), ("measured_examples", None)])
def test_invalid_choices_are_refused(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=argument):
        _sizing(10, **{argument: value})


def test_the_plan_reaches_the_monitor_its_records_and_its_state(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 40))  # 40 outputs: projected
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(32, 6)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(model, rs.Probe(x), optimizer=optimizer, sinks=[sink], max_overhead=0.05).attach()
    assert monitor.plan.output_projection in PROJECTIONS and monitor.plan.outputs == 40
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


def test_the_probe_pass_is_timed_on_the_fewest_examples_and_scaled_to_the_probe(monkeypatch) -> None:
    import regimescope.monitor as monitor_module

    timed: list[int] = []
    monkeypatch.setattr(monitor_module, "probe_pass", lambda model, probe, config: timed.append(probe.size))
    monkeypatch.setattr(monitor_module, "wall_seconds", lambda fn, device: fn() or 0.25)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 40))
    monitor = rs.RegimeMonitor(model, rs.Probe(torch.randn(64, 6)), max_overhead=0.05).attach()
    assert timed == [16]  # MIN_EXAMPLES of 64: a quarter of the probe
    assert monitor.plan.pass_seconds == pytest.approx(0.25 * 64 / 16)
    monitor.close()


@pytest.mark.parametrize("name", ["embedding_max_norm", "clamp_in_forward", "mixed_dtypes", "lstm_weight_norm"])
def test_the_timed_probe_pass_runs_the_model_as_a_measurement_does_and_leaves_it_untouched(name: str) -> None:
    """After the probe check (``attach()`` runs it first) found the weights the forward writes in place, the pass
    writes only copies of them; a mixed-dtype model runs as it is; an RNN keeps its cached weights."""
    model = build(name)
    probe = rs.Probe(inputs_of(name, model, 6))
    probe.check(model)
    before = weight_versions(model)
    cached = {m: list(m._flat_weights) for m in model.modules() if isinstance(m, nn.RNNBase)}

    probe_pass(model, probe, CaptureConfig())

    assert weights_untouched(model, before)
    assert all(all(a is b for a, b in zip(m._flat_weights, kept, strict=True)) for m, kept in cached.items())
