"""Never harm the training run: bit-identical training with and without the monitor, no hooks left, errors contained."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture.needs import Need
from regimescope.indicators.base import Indicator, Reference
from regimescope.record import Record
from tests.robustness._attach_models import train_steps
from tests.robustness._logs import no_hooks


def mlp_bn_dropout() -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(6 * 4 * 4, 3),
    )


CASES = {
    "mlp": (mlp_bn_dropout, (6,), lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)),
    "cnn": (small_cnn, (2, 8, 8), lambda params: torch.optim.Adam(params, lr=1e-3)),
}


def _train(case: str, monitored: bool, steps: int = 50) -> dict:
    build, shape, make_opt = CASES[case]
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    model = build()
    optimizer = make_opt(model.parameters())
    probe = rs.Probe(torch.randn(12, *shape), torch.randint(0, 3, (12,)))
    monitor = None
    if monitored:
        monitor = rs.RegimeMonitor(
            model, probe, optimizer=optimizer, schedule=lambda s: s % 5 == 0, max_overhead=None
        ).attach()
    train_steps(model, optimizer, shape, steps)
    measured = []
    if monitor is not None:
        measured = [r.step for r in monitor.history]
        monitor.close()
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": [p.grad.clone() for p in model.parameters()],
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "py_rng": random.random(),
        "np_rng": np.random.rand(),
        "training": [m.training for m in model.modules()],
        "model": model,
        "opt_obj": optimizer,
        "measured": measured,
    }


def _equal_optimizer_states(a: dict, b: dict) -> bool:
    if a["param_groups"] != b["param_groups"]:
        return False
    for key, state in a["state"].items():
        other = b["state"][key]
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                if not torch.equal(value, other[name]):
                    return False
            elif value != other[name]:
                return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_is_bit_identical_with_and_without_monitor(case: str) -> None:
    plain = _train(case, monitored=False)
    watched = _train(case, monitored=True)
    assert watched["measured"] == list(range(0, 51, 5))
    assert plain["state"].keys() == watched["state"].keys()
    for name in plain["state"]:
        assert torch.equal(plain["state"][name], watched["state"][name]), name
    for a, b in zip(plain["grads"], watched["grads"]):
        assert torch.equal(a, b)
    assert _equal_optimizer_states(plain["optimizer"], watched["optimizer"])
    assert torch.equal(plain["rng"], watched["rng"])
    assert plain["py_rng"] == watched["py_rng"]
    assert plain["np_rng"] == watched["np_rng"]
    assert plain["training"] == watched["training"]
    assert no_hooks(watched["model"])
    assert not watched["opt_obj"]._optimizer_step_post_hooks


class _Raising(Indicator):
    name = "raising"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def compute(self, current, reference, context) -> Record:
        if current.step >= self.at_step:
            raise RuntimeError("boom")
        return Record(current.step)


class _FailingForward(nn.Module):
    """Fails in eval mode once ``fail`` is set, i.e. inside the monitor's capture, never in training."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail and not self.training:
            raise RuntimeError("capture-time failure")
        return self.body(x)


def _loop(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_error_in_indicator_is_reported_once_and_pauses(caplog: pytest.LogCaptureFixture) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(
        model, torch.randn(6, 4), optimizer=optimizer, sinks=[sink], every=1, indicators=[_Raising(at_step=3)],
        max_overhead=None,
    ).attach()
    with caplog.at_level("ERROR"):
        _loop(model, optimizer, 10)
    assert monitor.paused
    failures = [r for r in caplog.records if "measurement at step" in r.getMessage()]
    assert len(failures) == 1
    assert sink.texts("regimescope/alerts")[0] == [3]
    assert [r.step for r in monitor.history] == [0, 1, 2]
    assert no_hooks(model)
    monitor.close()


def test_strict_raises() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = rs.RegimeMonitor(
        model, torch.randn(6, 4), optimizer=optimizer, every=1, indicators=[_Raising(at_step=1)], strict=True,
        max_overhead=None,
    ).attach()
    with pytest.raises(RuntimeError, match="boom"):
        _loop(model, optimizer, 2)
    monitor.close()


def test_no_hooks_left_after_failure_inside_capture() -> None:
    model = _FailingForward()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = rs.RegimeMonitor(model, torch.randn(6, 4), optimizer=optimizer, every=1, max_overhead=None).attach()
    model.fail = True
    before = [p.detach().clone() for p in model.parameters()]
    _loop(model, optimizer, 3)
    assert monitor.paused
    assert no_hooks(model)
    assert model.training
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    monitor.close()
    assert not optimizer._optimizer_step_post_hooks
