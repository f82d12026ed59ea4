"""A tiny regression task for sweep tests: module-level factories, so that process pools can pickle them."""

from __future__ import annotations

import os

import torch
from torch import nn

import regimescope as rs
from regimescope.sweep import default_step

STEPS = 12


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """16 inputs in 4 dimensions with smooth targets."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=generator)
    return x, torch.sin(2 * x[:, :1])


def make_model(width: int = 16) -> nn.Module:
    """A two-layer ReLU net (the sweep seeds torch before each build)."""
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))


def make_optimizer(model: nn.Module, lr: float = 0.05) -> torch.optim.Optimizer:
    """Plain SGD."""
    return torch.optim.SGD(model.parameters(), lr=lr)


def failing_model(init_scale: float) -> nn.Module:
    """Fails at the largest scale, to check that a failing point is reported and the sweep goes on."""
    if init_scale > 5:
        raise RuntimeError("this point cannot be built")
    return make_model()


def dying_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple, init_scale: float) -> float:
    """The default step, except at scales above 2, where it ends its process at once (no Python exception to catch:
    the worker dies). Only the measured stage trains, so the forecast stage in the caller's process is safe."""
    if init_scale > 2:
        os._exit(3)
    return default_step(model, optimizer, batch)


def arguments(**overrides) -> dict:
    """``rs.sweep`` keyword arguments of the task (a measurement every 6 steps)."""
    x, y = data()
    base = {
        "make_optimizer": make_optimizer,
        "data": [(x, y)],
        "probe": rs.Probe(x, y),
        "steps": STEPS,
        "monitor_options": {"every": 6},
    }
    return {**base, **overrides}
