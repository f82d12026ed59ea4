"""Advice from the forecast: which knob moves a run across the boundary; followed, it moves a lazy run to rich and
back (the teacher-student student of theory.md 6.6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import regimescope as rs
from regimescope.forecast import LAZY_RATIO
from regimescope.knobs import CLEAR_MARGIN, advise, model_at_init, scale_init, scale_output
from regimescope.scenarios import InitSpec, make_probe, make_student, make_teacher_student
from regimescope.verdict import Verdict, explain

STEPS = 300
LAZY_LR = 0.0012
"""Gradient-descent step of the tau = 3 student (the demo's large, lazy run): 2 lr lambda_max / n stays below 1."""


@pytest.fixture(scope="module")
def task() -> tuple[torch.Tensor, torch.Tensor, rs.Probe]:
    x, y = make_teacher_student(128, 8, seed=0)
    probe_x, probe_y = make_probe(8, seed=0, n=48)
    return x, y, rs.Probe(probe_x, probe_y)


def _train(model: nn.Module, lr: float, task) -> Verdict:
    x, y, probe = task
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    monitor = rs.RegimeMonitor(model, probe, optimizer=optimizer, alert_rules=[], every=STEPS // 2, max_overhead=None)
    with monitor:
        for _ in range(STEPS):
            optimizer.zero_grad()
            F.mse_loss(model(x), y).backward()
            optimizer.step()
        return monitor.regime


@pytest.mark.slow
def test_following_the_advice_moves_a_lazy_run_to_rich_and_back(task) -> None:
    model = make_student(InitSpec(scale=3.0, balance=0.0), 8, 32, seed=0)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert _train(model, LAZY_LR, task).label == "lazy"
    lazy_advice = advise(model_at_init(model, start), task[2], Verdict(STEPS, 0.0, "lazy"))
    to_rich = lazy_advice.move("init_scale", "rich")
    assert to_rich is not None and to_rich.clear < to_rich.boundary < 1
    assert to_rich.kernel_scale == pytest.approx(to_rich.clear**2, rel=0.05)  # a two-layer net: K ~ tau^2
    rich_start = scale_init(model_at_init(model, start), to_rich.clear)
    rich_model = scale_init(model_at_init(model, start), to_rich.clear)
    assert _train(rich_model, LAZY_LR / to_rich.kernel_scale, task).label == "rich"
    rich_advice = advise(rich_start, task[2], Verdict(STEPS, 1.0, "rich"))
    to_lazy = rich_advice.move("init_scale", "lazy")
    assert to_lazy is not None and to_lazy.clear > to_lazy.boundary > 1
    back = scale_init(rich_start, to_lazy.clear)
    assert _train(back, LAZY_LR / to_rich.kernel_scale / to_lazy.kernel_scale, task).label == "lazy"


def test_the_advised_factors_put_the_forecast_past_the_boundary(task) -> None:
    model = make_student(InitSpec(scale=3.0, balance=0.0), 8, 32, seed=0)
    advice = advise(model, task[2], Verdict(10, 0.0, "lazy"))
    assert {(m.knob, m.goal) for m in advice.moves} == {("init_scale", "rich"), ("output_scale", "rich")}
    rich = rs.forecast_regime(scale_init(model, advice.move("init_scale", "rich").clear), task[2])
    assert rich.label == "rich" and rich.fast.change == pytest.approx(LAZY_RATIO * CLEAR_MARGIN, rel=0.15)
    crossing = rs.forecast_regime(
        scale_output(model, advice.move("output_scale", "rich").boundary, centred=True), task[2]
    )
    assert crossing.fast.change == pytest.approx(LAZY_RATIO, rel=0.15)
    assert "scale_init(model, " in advice.text and "learning rate" in advice.text
    assert advice.text in explain(Verdict(10, 0.0, "lazy", {}), {}, advice=advice.text)


def test_a_transitional_run_gets_both_directions_and_a_side_already_reached_is_said(task) -> None:
    model = make_student(InitSpec(scale=3.0, balance=0.0), 8, 32, seed=0)
    advice = advise(model, task[2], Verdict(10, 0.5, "transitional"), knobs=("init_scale",))
    assert advice.move("init_scale", "rich").clear < 1
    assert advice.move("init_scale", "lazy").clear == 1
    assert "already puts it on the lazy side" in advice.text


def test_the_forecast_says_when_it_cannot_tell(task) -> None:
    model = make_student(InitSpec(scale=3.0, balance=0.0), 8, 32, seed=0)
    no_targets = advise(model, rs.Probe(task[2].inputs), Verdict(10, 0.0, "lazy"))
    assert no_targets.moves == () and "cannot tell" in no_targets.text
    disagrees = advise(model, task[2], Verdict(10, 1.0, "rich"), knobs=("init_scale",))
    assert disagrees.moves == () and "cannot tell" in disagrees.text and "lazy side" in disagrees.text
    with pytest.raises(ValueError, match="`knobs`"):
        advise(model, task[2], None, knobs=("width",))


def test_model_at_init_copies_the_step0_weights_into_a_new_model() -> None:
    model = make_student(InitSpec(scale=1.0, balance=0.0), 4, 8, seed=0)
    start = {name: p.detach().clone() + 1 for name, p in model.named_parameters()}
    copied = model_at_init(model, start)
    assert copied is not model
    assert all(torch.equal(p, start[n]) for n, p in copied.named_parameters())
    assert not torch.equal(model.hidden.weight, start["hidden.weight"])
    with pytest.raises(ValueError, match="does not have"):
        model_at_init(model, {"nope": torch.zeros(1)})
