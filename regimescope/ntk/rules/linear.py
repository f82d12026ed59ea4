"""The exact rule for ``nn.Linear`` on inputs of any leading shape: ``(n, d)``, ``(n, T, d)``, ``(n, ...,  d)``.

Every leading dimension after the batch is a position ``t``; the per-sample gradient sums over positions
(``dW = sum_t g_t a_t^T``), so for sequences the kernel block is ``sum_{t,s} <g_{i,t}, g_{j,s}> <a_{i,t}, a_{j,s}>``,
not a per-token kernel.
"""

from __future__ import annotations

import torch
from torch import nn

from regimescope.ntk.rules.outer import OuterProductRule


class LinearRule(OuterProductRule):
    """``nn.Linear`` (and subclasses that keep its forward)."""

    name = "linear"

    def applies(self, module: nn.Module) -> bool:
        """Any module whose forward is ``nn.Linear.forward``."""
        return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward

    def record(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``(n, ..., D)`` -> ``(n, T, D)``."""
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def grad_tokens(self, module: nn.Module, g: torch.Tensor) -> torch.Tensor:
        """``(b, n, ..., C)`` -> ``(b, n, T, C)``."""
        return g.reshape(g.shape[0], g.shape[1], -1, g.shape[-1])


LINEAR_RULE = LinearRule()
