"""The small task, network and training loop that the distributed tests (DDP, FSDP) run on every rank."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import regimescope as rs

STEPS = 20
"""Optimizer steps of every training run."""

MEASURED_STEPS = [0, 1, 2, 4, 5, 10, 15, 20]
"""The steps a monitor with ``every=5`` measures over a training run."""


def task() -> tuple[torch.Tensor, torch.Tensor]:
    """64 inputs of 5 features and 3-class labels, the same on every rank."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=generator)
    return x, (x[:, :3] > 0).long().sum(1) % 3


def probe() -> rs.Probe:
    """The first 16 examples of :func:`task`, with targets."""
    x, y = task()
    return rs.Probe(x[:16], y[:16])


def net() -> nn.Module:
    """A 5-32-32-3 ReLU MLP, with the same weights on every call."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))


def train(
    rank: int, world: int, trained: nn.Module, monitor_options: dict[str, Any] | None
) -> tuple[rs.RegimeMonitor | None, list[rs.Alert]]:
    """Train ``trained`` (a DDP or sharded model) :data:`STEPS` SGD steps on this rank's examples.

    Args:
        rank: This rank.
        world: Number of ranks.
        trained: The model as the training loop calls it.
        monitor_options: ``RegimeMonitor`` options; ``None`` trains without a monitor.

    Returns:
        The closed monitor (``None`` without one) and the alerts it delivered on this rank.
    """
    x, y = task()
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.2)
    alerts: list[rs.Alert] = []
    monitor = None
    if monitor_options is not None:
        monitor = rs.RegimeMonitor(trained, probe(), optimizer=optimizer, on_alert=alerts.append, max_overhead=None,
                                     **monitor_options)
        monitor.attach()
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(trained(x[rank::world]), y[rank::world])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if monitor is not None:
        monitor.close()
    return monitor, alerts
