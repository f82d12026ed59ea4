"""Training a real-architecture run: SGD with momentum on seeded batches of its task."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from regimescope.outputs import default_output
from regimescope.scenarios.architectures.tasks import Task

MOMENTUM = 0.9
"""SGD momentum of every run."""


@dataclass
class Run:
    """A built run, ready to train.

    Attributes:
        model: The model the monitor watches and the optimizer trains.
        task: What it is trained on.
        lr: SGD learning rate.
        loss_scale: The loss is multiplied by this (``1 / alpha^2`` for the output-scaled model).
    """

    model: nn.Module
    task: Task
    lr: float
    loss_scale: float = 1.0



def step(run: Run, optimizer: torch.optim.Optimizer, index: int, seed: int) -> float:
    """One SGD step of ``run`` on its task's batch number ``index``; the loss before scaling."""
    x, y = run.task.sample(index, seed)
    loss = run.task.loss(default_output(run.model(x)), y)
    optimizer.zero_grad()
    (run.loss_scale * loss).backward()
    optimizer.step()
    return float(loss.detach())


def optimizer_for(run: Run) -> torch.optim.Optimizer:
    """SGD with momentum :data:`MOMENTUM` over the parameters of ``run`` that train."""
    trained = [p for p in run.model.parameters() if p.requires_grad]
    return torch.optim.SGD(trained, lr=run.lr, momentum=MOMENTUM)


def train(run: Run, steps: int, seed: int = 0) -> list[float]:
    """Train ``run`` for ``steps`` SGD steps without a monitor; the training losses (before loss scaling)."""
    optimizer = optimizer_for(run)
    run.model.train()
    return [step(run, optimizer, index, seed) for index in range(steps)]


