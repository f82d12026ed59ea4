"""The exact rule for ``nn.Conv1d`` / ``nn.Conv2d`` (one group, numeric zero padding): an outer product over patches.

The layer input becomes its ``T`` patches of ``D = C_in * prod(kernel)`` values (as ``F.unfold``), the output gradient
``T`` positions of ``C = C_out`` values, and ``dW = sum_t g_t a_t^T`` as for a linear layer applied at every
position. Which of the two exact forms the engine uses is decided per layer from the shapes; see
:mod:`regimescope.ntk.planning.costs`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regimescope.ntk.rules.outer import OuterProductRule


class ConvRule(OuterProductRule):
    """``nn.Conv1d`` and ``nn.Conv2d`` with ``groups=1``, ``padding_mode="zeros"`` and numeric padding."""

    name = "conv"
    channels_first = True

    def applies(self, module: nn.Module) -> bool:
        """Plain Conv1d/Conv2d forward, one group, zero padding given as numbers."""
        plain = (isinstance(module, nn.Conv1d) and type(module).forward is nn.Conv1d.forward) or (
            isinstance(module, nn.Conv2d) and type(module).forward is nn.Conv2d.forward
        )
        return plain and module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)

    def record(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Patches ``(n, T, C_in * prod(kernel))`` in the weight's ``(C_in, kh, kw)`` order.

        Built from strided views of the padded input and one copy (``F.unfold`` is several times slower on CPU).
        """
        if isinstance(module, nn.Conv1d):
            x = x.unsqueeze(2)
            kernel, dilation, padding, stride = (
                (1, module.kernel_size[0]),
                (1, module.dilation[0]),
                (0, module.padding[0]),
                (1, module.stride[0]),
            )
        else:
            kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        windows = x.unfold(2, spans[0], stride[0]).unfold(3, spans[1], stride[1])
        windows = windows[..., :: dilation[0], :: dilation[1]]
        n, c, h, w = windows.shape[:4]
        return windows.permute(0, 2, 3, 1, 4, 5).reshape(n, h * w, c * kernel[0] * kernel[1])

    def grad_tokens(self, module: nn.Module, g: torch.Tensor) -> torch.Tensor:
        """``(b, n, C_out, *spatial)`` -> ``(b, n, T, C_out)``."""
        return g.reshape(g.shape[0], g.shape[1], g.shape[2], -1).transpose(-1, -2)


CONV_RULE = ConvRule()
