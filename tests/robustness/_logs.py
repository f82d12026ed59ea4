"""A tiny monitored training run, shared by the log fault-injection tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

import regimescope as rs
from regimescope.sinks import read_jsonl
from tests._models import mlp

EVERY = 4


def task(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed regression batch for :func:`tests._models.mlp` (inputs ``(32, 5)``, targets ``(32, 3)``)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=generator)
    return x, torch.tanh(x[:, :3] * 2.0)


def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = mlp()
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def monitor(model: nn.Module, optimizer: torch.optim.Optimizer, **options: Any) -> rs.RegimeMonitor:
    x, y = task()
    options.setdefault("every", EVERY)
    options.setdefault("max_overhead", None)  # these tests follow the records of a fixed schedule
    return rs.RegimeMonitor(model, rs.Probe(x[:8], y[:8]), optimizer=optimizer, **options)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    x, y = task()
    for _ in range(steps):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def unmonitored_parameters(steps: int) -> list[torch.Tensor]:
    model, optimizer = fresh()
    train(model, optimizer, steps)
    return [p.detach().clone() for p in model.parameters()]


def same_parameters(model: nn.Module, expected: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, e) for p, e in zip(model.parameters(), expected))


def read_clean(path: Path, **options: Any) -> list[rs.Record]:
    """``read_jsonl`` that fails on any warning (a torn line anywhere)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_jsonl(path, **options)


def steps(records: list[rs.Record]) -> list[int]:
    return [record.step for record in records]
