"""Healthy zero-initialised models (a zero head and bias, a LoRA-style factor at zero, every weight at zero) never
look diverged: ``stop_on="non_finite"`` never asks to stop. The Lightning and Hugging Face adapters are checked in
tests/integrations."""

from __future__ import annotations

import math

import pytest
import torch

import regimescope as rs
from tests.robustness._attach_models import IN, OUT, build, train_steps


@pytest.mark.parametrize("name", ["zero_init", "all_zero"])
def test_stop_on_non_finite_never_stops_a_zero_initialised_model(name: str) -> None:
    model = build(name)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    generator = torch.Generator().manual_seed(1)
    probe = rs.Probe(torch.randn(16, IN, generator=generator), torch.randint(0, OUT, (16,), generator=generator))
    seen: list[rs.Alert] = []
    mon = rs.RegimeMonitor(model, probe, optimizer=optimizer, every=2, max_overhead=None, stop_on=("non_finite",),
                           on_alert=seen.append).attach()
    train_steps(model, optimizer, (IN,), 12)
    mon.close()
    assert [r.step for r in mon.history] == [0, 1, 2, 4, 6, 8, 10, 12] and not mon.paused
    assert not mon.stop_requested and [a for a in seen if a.kind == "non_finite"] == []
    assert all(math.isfinite(value) for record in mon.history for value in record.scalars.values())
