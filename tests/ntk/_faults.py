"""Injected faults shared by the engine's tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

INJECTED = "backward failure injected by the test"
"""The message of the injected backward failure."""


class _FailingBackward(torch.autograd.Function):
    """Identity whose backward raises, under ``vmap`` too."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(INJECTED)


class FailInBackward(nn.Module):
    """An identity layer whose backward pass always fails: a real error of the model, on every path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FailingBackward.apply(x)
