"""Where the user's loop steps the optimizer from: under ``torch.inference_mode`` the monitor still measures, and a
``KeyboardInterrupt`` raised by the model's forward in the middle of a measurement reaches the user, leaving the model
as it was and the monitor able to measure again."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests._models import mlp
from tests.robustness._logs import monitor, no_hooks, same_parameters, steps, train, unmonitored_parameters

STEPS = 16
MEASURED = [0, 1, 2, 4, 8, 12, 16]


def test_an_optimizer_stepped_under_inference_mode_is_measured_and_trains_as_without_the_monitor() -> None:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = monitor(model, optimizer).attach()
    train(model, optimizer, STEPS, stepping=torch.inference_mode)
    mon.close()
    assert steps(mon.history) == MEASURED and not mon.paused
    assert "regimescope/kernel/distance_from_init" in mon.history[-1].scalars
    assert same_parameters(model, unmonitored_parameters(STEPS, stepping=torch.inference_mode))


class Interruptible(nn.Module):
    """:func:`tests._models.mlp` whose forward raises ``KeyboardInterrupt`` once armed, when run in eval mode (as a
    measurement runs it; training runs it in train mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()
        self.armed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.armed and not self.training:
            raise KeyboardInterrupt
        return self.net(x)


def test_ctrl_c_inside_a_measurement_reaches_the_user_and_leaves_the_model_and_monitor_whole() -> None:
    model = Interruptible()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = monitor(model, optimizer).attach()
    train(model, optimizer, 7)
    model.armed = True
    with pytest.raises(KeyboardInterrupt):
        train(model, optimizer, 1)  # step 8 is measured: its forward raises
    model.armed = False
    assert no_hooks(model) and not nn.modules.module._global_forward_hooks
    assert all(m.training for m in model.modules()) and all(p.requires_grad for p in model.parameters())
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled() and not mon.paused
    train(model, optimizer, STEPS - 8)  # the user goes on
    mon.close()
    assert steps(mon.history) == [0, 1, 2, 4, 12, 16]  # step 8 was interrupted, the next ones are measured
    assert same_parameters(model, unmonitored_parameters(STEPS))
