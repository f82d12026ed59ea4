"""A tiny monitored training run, shared by the robustness tests (logs, faults, user callables, foreign states)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
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


def task_probe(examples: slice = slice(0, 8)) -> rs.Probe:
    """Examples of :func:`task` with their targets as a probe; the first 8, :func:`monitor`'s default."""
    x, y = task()
    return rs.Probe(x[examples], y[examples])


def monitor(
    model: nn.Module, optimizer: torch.optim.Optimizer | None, probe: rs.Probe | None = None, **options: Any
) -> rs.RegimeMonitor:
    """A monitor of ``model`` on ``probe`` (default :func:`task_probe`), measuring every :data:`EVERY` steps whatever it
    costs."""
    options.setdefault("every", EVERY)
    options.setdefault("max_overhead", None)  # these tests follow the records of a fixed schedule
    return rs.RegimeMonitor(model, task_probe() if probe is None else probe, optimizer=optimizer, **options)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    stepping: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> None:
    """``steps`` regression steps on :func:`task`, each ``optimizer.step()`` inside ``stepping()`` (e.g.
    ``torch.inference_mode``)."""
    x, y = task()
    for _ in range(steps):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        with stepping():
            optimizer.step()


def unmonitored_parameters(
    steps: int, stepping: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
) -> list[torch.Tensor]:
    model, optimizer = fresh()
    train(model, optimizer, steps, stepping)
    return [p.detach().clone() for p in model.parameters()]


def no_hooks(model: nn.Module) -> bool:
    """Whether no module of ``model`` holds a forward, forward-pre, backward or backward-pre hook."""
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks and not m._backward_pre_hooks
        for m in model.modules()
    )


def same_parameters(model: nn.Module, expected: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, e) for p, e in zip(model.parameters(), expected))


def read_clean(path: Path, **options: Any) -> list[rs.Record]:
    """``read_jsonl`` that fails on any warning (a torn line anywhere)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_jsonl(path, **options)


def steps(records: list[rs.Record]) -> list[int]:
    return [record.step for record in records]
