"""Keeping the tensors a model holds as plain attributes as they were while the engine runs it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def _held(module: nn.Module) -> dict[str, tuple[Any, list[Any] | None]]:
    """``module``'s plain tensor and list attributes, each with a copy of its items when it is a list."""
    return {
        name: (value, list(value) if isinstance(value, list) else None)
        for name, value in vars(module).items()
        if isinstance(value, (torch.Tensor, list))
    }


@contextlib.contextmanager
def preserved_attributes(model: nn.Module) -> Iterator[None]:
    """Put every module's plain tensor and list attributes (neither parameters nor buffers) back after the block.

    A forward run on the engine's parameter copies leaves them on the user's module otherwise: hook-based
    reparametrizations (the legacy ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``) recompute
    ``module.weight`` as a plain attribute in a forward pre-hook, and an RNN caches its weights in the lists
    ``_flat_weights``/``_flat_weight_refs`` (a parametrized RNN weight is computed there at every forward). Left
    behind, such a tensor carries the engine's graph, dtype or ``torch.func`` wrapper (which ``copy.deepcopy`` of the
    model then refuses). Attributes the block adds are removed, and the ones it replaces or fills are restored, the
    same objects with the same items (even after an error).
    """
    saved = [(module, _held(module)) for module in model.modules()]
    try:
        yield
    finally:
        for module, attributes in saved:
            for name in _held(module).keys() - attributes.keys():
                del module.__dict__[name]
            for name, (value, items) in attributes.items():
                if items is not None:
                    value[:] = items
                module.__dict__[name] = value
