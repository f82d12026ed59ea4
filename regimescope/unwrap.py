"""Reaching the user's module inside training wrappers (DDP, DataParallel, ``torch.compile``)."""

from __future__ import annotations

from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The innermost module of ``DistributedDataParallel`` / ``DataParallel`` (``.module``) and ``torch.compile``
    (``._orig_mod``) wrappers, so measuring never runs the wrapper's hooks or collectives."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model
