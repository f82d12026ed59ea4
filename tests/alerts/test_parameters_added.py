"""Parameters that start training after attach(): the step-0 references have nothing for them, and the monitor says
so once per parameter, naming them and the fix, without touching training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.alerts import ParametersAdded, RegimeWarning
from regimescope.tags import ALERTS
from tests._models import frozen_mlp, mlp
from tests.robustness._logs import monitor, read_clean, steps, train

UNFREEZE_AT = 5
"""The step after which the tests unfreeze; measured next at step 8 (every 4)."""


def _unfreeze_layer_0(model: nn.Sequential, optimizer: torch.optim.Optimizer) -> None:
    model[0].requires_grad_(True)
    optimizer.add_param_group({"params": list(model[0].parameters()), "lr": 0.1})


def _run_unfreezing(monitored: bool, **options) -> tuple[nn.Module, rs.RegimeMonitor | None, list[rs.Alert]]:
    """16 steps of :func:`frozen_mlp`, its layer ``0`` unfrozen into a new param group after step 5."""
    model = frozen_mlp()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    seen: list[rs.Alert] = []
    mon = monitor(model, optimizer, on_alert=seen.append, **options).attach() if monitored else None
    train(model, optimizer, UNFREEZE_AT)
    _unfreeze_layer_0(model, optimizer)
    train(model, optimizer, 16 - UNFREEZE_AT)
    if mon is not None:
        mon.close()
    return model, mon, seen


def _added(alerts: list[rs.Alert]) -> list[rs.Alert]:
    return [alert for alert in alerts if alert.kind == ParametersAdded.kind]


def test_a_layer_unfrozen_into_a_new_param_group_is_announced_once_with_the_fix(tmp_path: Path) -> None:
    with pytest.warns(RegimeWarning, match=r"\[parameters_added\] 2 parameter\(s\) started training after attach"):
        model, mon, seen = _run_unfreezing(True, logdir=tmp_path)
    (alert,) = _added(seen)
    assert alert.step == 8 and alert.value == 2 and alert.layer is None
    assert "`0.weight`, `0.bias`; they are in no kernel block, weight panel or verdict" in alert.message
    assert "attach a new RegimeMonitor" in alert.message and "trainable before attach()" in alert.message
    records = read_clean(tmp_path / "regimescope.jsonl")
    assert steps(records) == [0, 1, 2, 4, 8, 12, 16] and not mon.paused
    assert [r.step for r in records if ParametersAdded.kind in r.texts.get(ALERTS, "")] == [8]  # in TensorBoard and JSONL too
    assert not any(tag.endswith("/0") for tag in records[-1].scalars)  # still outside the kernel and weight panels
    unmonitored, _, _ = _run_unfreezing(False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), unmonitored.parameters()))


def test_a_parameter_unfrozen_in_a_measured_layer_names_that_layer_and_each_addition_is_announced_once() -> None:
    """``2.bias`` frozen at attach but held by the optimizer, then unfrozen: it joins the block of layer ``2``. A
    parameter outside the model added later is announced on its own; nothing is announced twice."""
    model = mlp()
    model[2].bias.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[rs.Alert] = []
    mon = monitor(model, optimizer, on_alert=seen.append).attach()
    train(model, optimizer, UNFREEZE_AT)
    model[2].bias.requires_grad_(True)
    train(model, optimizer, 4)
    optimizer.add_param_group({"params": [nn.Parameter(torch.ones(3))], "lr": 0.1})
    train(model, optimizer, 7)
    mon.close()
    first, second = _added(seen)
    assert (first.step, first.layer, second.step, second.layer) == (8, "2", 12, None)
    assert "`2.bias`; layer(s) `2` were measured at step 0 without them" in first.message
    assert "1 parameter(s) started training after attach(): the optimizer's parameter 6, a tensor outside" in (
        second.message
    )


def test_parameters_trained_from_attach_or_never_are_not_announced() -> None:
    """A parameter outside the model trained from the start (a learnable temperature), a layer that stays frozen,
    and a monitor without an optimizer whose model keeps its trainable set: no alert."""
    model = frozen_mlp()
    temperature = nn.Parameter(torch.ones(()))
    optimizer = torch.optim.SGD([*model.parameters(), temperature], lr=0.1)
    seen: list[rs.Alert] = []
    with monitor(model, optimizer, on_alert=seen.append):
        train(model, optimizer, 16)
    manual = monitor(frozen_mlp(), None, on_alert=seen.append).attach()
    for step in range(1, 9):
        manual.step(step)
    manual.close()
    assert _added(seen) == []


def test_without_an_optimizer_a_layer_unfrozen_after_attach_is_announced() -> None:
    model = frozen_mlp()
    seen: list[rs.Alert] = []
    mon = monitor(model, None, on_alert=seen.append).attach()
    mon.step(4)
    model[0].requires_grad_(True)
    mon.step(8)
    mon.close()
    (alert,) = _added(seen)
    assert alert.step == 8 and "`0.weight`, `0.bias`" in alert.message


class RootScaled(nn.Module):
    """A weight-normed layer and two parameters owned by the root module."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3))
        self.head = nn.Linear(3, 3)
        self.scale = nn.Parameter(torch.ones(()))
        self.shift = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.head(self.layer(x)) + self.shift


def test_the_alert_names_the_blocks_the_parameters_joined_as_the_engine_names_them() -> None:
    """``shift`` joins the root module's block ``(root)`` and the weight norm's direction ``original1`` joins the
    block ``layer.parametrizations.weight``, both measured at step 0 through their other parameters: the rule names
    the blocks the engine measured, not names guessed from the parameters' (``layer.parametrizations``, ``shift``)."""
    model = RootScaled()
    model.shift.requires_grad_(False)
    model.layer.parametrizations.weight.original1.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen: list[rs.Alert] = []
    x = torch.randn(16, 4)
    mon = rs.RegimeMonitor(
        model, rs.Probe(x[:8]), optimizer=optimizer, every=4, max_overhead=None, on_alert=seen.append
    ).attach()
    model.shift.requires_grad_(True)
    model.layer.parametrizations.weight.original1.requires_grad_(True)
    for _ in range(4):
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mon.close()
    (alert,) = _added(seen)
    assert alert.layer == "(root), layer.parametrizations.weight"
    assert "`shift`, `layer.parametrizations.weight.original1`" in alert.message
