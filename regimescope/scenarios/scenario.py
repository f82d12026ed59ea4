"""A scenario: a small model whose regime theory predicts, with its data, step size, length and probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.probe import Probe
from regimescope.scenarios.theory import Signature, Theory


@dataclass
class Setup:
    """A built scenario, ready to train by full-batch gradient descent.

    Attributes:
        model: The model (float64, initialised).
        inputs: Training inputs (one full batch).
        targets: Training targets, ``(n, outputs)``.
        lr: Gradient-descent step size.
        steps: Number of steps.
        loss_weight: ``L = loss_weight * |f(X) - Y|_F^2 / 2``.
        probe: The monitor's probe.
    """

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    lr: float
    steps: int
    loss_weight: float
    probe: Probe


@dataclass(frozen=True)
class Scenario:
    """A run whose regime theory predicts.

    Attributes:
        name: Short unique name, ``family/run`` (e.g. ``"teacher/balanced"``).
        section: Where theory.md states the prediction, e.g. ``"6.3"``.
        description: One line for tables.
        theory: The prediction.
        build: Builds the run (deterministic: the same weights and data on every call).
        signatures: For rich runs, the kernel evidence theory says carries the richness.
    """

    name: str
    section: str
    description: str
    theory: Theory
    build: Callable[[], Setup]
    signatures: frozenset[Signature] = frozenset()

    @property
    def run(self) -> str:
        """The name without its family (``"balanced"`` for ``"teacher/balanced"``): the run's log folder."""
        return self.name.rsplit("/", 1)[-1]
