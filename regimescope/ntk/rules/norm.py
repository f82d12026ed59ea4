"""The exact rule for the affine parameters of normalisation layers: elementwise, so per-sample gradients are tiny.

For ``y = x_hat * w + b`` with ``x_hat`` the normalised input (the layer without its affine part), the per-sample
gradients are ``dw = sum_t g_t * x_hat_t`` and ``db = sum_t g_t`` over the positions ``t`` sharing a parameter
(tokens for ``LayerNorm`` / ``RMSNorm``, spatial positions for ``BatchNorm`` / ``GroupNorm``). They have as many
entries as the layer has channels, so the collection passes store them directly (cost ``T C`` per example and
output) and the block is their Gram.

Covered: ``LayerNorm``, ``RMSNorm`` (trailing ``normalized_shape``; torch 2.4 and later); ``GroupNorm`` and ``BatchNorm1d/2d/3d`` with
running statistics (channel dimension 1; in eval mode, the only mode the rules are used in, BatchNorm normalises
with its running statistics, so examples stay independent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regimescope.ntk.rules.base import LayerRule

_RMS_NORM: tuple[type[nn.Module], ...] = (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()
"""``nn.RMSNorm`` where this torch has it (it appeared in torch 2.4; the project allows 2.3)."""
_TRAILING = (nn.LayerNorm, *_RMS_NORM)
_CHANNEL = (nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class NormRule(LayerRule):
    """Affine parameters of ``LayerNorm``, ``RMSNorm``, ``GroupNorm`` and ``BatchNorm`` with running statistics."""

    name = "norm"
    compact = True

    def applies(self, module: nn.Module) -> bool:
        """A covered type with its own forward (BatchNorm: tracking running statistics)."""
        if not any(type(module).forward is cls.forward for cls in _TRAILING + _CHANNEL if isinstance(module, cls)):
            return False
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return module.running_mean is not None and module.running_var is not None
        return True

    def _normalised(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(module, nn.LayerNorm):
            return F.layer_norm(x, module.normalized_shape, None, None, module.eps)
        if isinstance(module, _RMS_NORM):
            return F.rms_norm(x, module.normalized_shape, None, module.eps)
        if isinstance(module, nn.GroupNorm):
            return F.group_norm(x, module.num_groups, None, None, module.eps)
        return F.batch_norm(x, module.running_mean, module.running_var, None, None, False, 0.0, module.eps)

    def _tokens(self, module: nn.Module, t: torch.Tensor, lead: int) -> torch.Tensor:
        """``(*lead dims, n, ...)`` -> ``(*lead dims, n, T, P)`` with ``P`` the parameter's size."""
        shape = t.shape[:lead]
        if isinstance(module, _TRAILING):
            size = 1
            for d in module.normalized_shape:
                size *= d
            return t.reshape(*shape, -1, size)
        channels = t.shape[lead]
        return t.reshape(*shape, channels, -1).transpose(-1, -2)

    def record(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``x_hat`` as ``(n, T, P)``."""
        return self._tokens(module, self._normalised(module, x.detach()), 1)

    def grad_tokens(self, module: nn.Module, g: torch.Tensor) -> torch.Tensor:
        """``(b, n, ...)`` -> ``(b, n, T, P)``."""
        return self._tokens(module, g, 2)

    def per_sample(self, module: nn.Module, local: str, record: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """``(k, n, P)``: ``sum_t g_t * x_hat_t`` for the weight, ``sum_t g_t`` for the bias."""
        if local == "bias":
            return grads.sum(2)
        return (grads * record.unsqueeze(0)).sum(2)

    def per_sample_flops(self, module: nn.Module, tokens: int, record_width: int, grad_width: int) -> int:
        """Elementwise: ``2 T P``."""
        return 2 * tokens * grad_width


NORM_RULE = NormRule()
