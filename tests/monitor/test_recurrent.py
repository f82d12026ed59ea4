"""Recurrent models through the monitor: a GRU and a float64 LSTM (the layers ``vmap`` refuses, measured on the
generic path) are measured at every scheduled step, never paused, and train exactly as without the monitor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from tests.ntk.test_recurrent import Recurrent

STEPS = 6
MEASURED = [0, 1, 2, 4, 6]


def _model(cell: type[nn.RNNBase], dtype: torch.dtype) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Recurrent(cell, batch_first=True).to(dtype)


def _task(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, 3, generator=generator, dtype=dtype)
    return x, x[:, -1, :2].sin()


def _run(cell: type[nn.RNNBase], dtype: torch.dtype, monitored: bool) -> tuple[nn.Module, rs.RegimeMonitor | None]:
    model, (x, y) = _model(cell, dtype), _task(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = None
    if monitored:
        mon = rs.RegimeMonitor(model, rs.Probe(x[:6], y[:6]), optimizer=optimizer, every=2, max_overhead=None).attach()
    for _ in range(STEPS):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if mon is not None:
        mon.close()
    return model, mon


@pytest.mark.parametrize(("cell", "dtype"), [(nn.GRU, torch.float32), (nn.LSTM, torch.float64)],
                         ids=["gru", "lstm_float64"])
def test_a_recurrent_model_is_measured_at_every_scheduled_step_and_trains_unchanged(
    cell: type[nn.RNNBase], dtype: torch.dtype
) -> None:
    model, mon = _run(cell, dtype, monitored=True)
    assert [r.step for r in mon.history] == MEASURED and not mon.paused
    for record in mon.history[1:]:
        assert 0 < record.scalars["regimescope/kernel/distance_from_init/rnn"] < 1
    assert mon.regime is not None
    plain, _ = _run(cell, dtype, monitored=False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), plain.parameters()))
