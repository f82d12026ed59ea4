"""Keeping the tensors a model holds as plain attributes as they were while the engine runs it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def _tensor_attributes(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value for name, value in vars(module).items() if isinstance(value, torch.Tensor)}


@contextlib.contextmanager
def preserved_tensor_attributes(model: nn.Module) -> Iterator[None]:
    """Put every module's plain tensor attributes (neither parameters nor buffers) back after the block.

    Hook-based reparametrizations (the legacy ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``) recompute
    ``module.weight`` as a plain attribute in a forward pre-hook. Run by the engine on its own parameter copies,
    they would leave the engine's tensor, with its autograd graph and in the compute dtype, on the user's module.
    Attributes the block adds are removed, and the ones it replaces are restored (even after an error).
    """
    saved = [(module, _tensor_attributes(module)) for module in model.modules()]
    try:
        yield
    finally:
        for module, attributes in saved:
            for name in _tensor_attributes(module).keys() - attributes.keys():
                del module.__dict__[name]
            module.__dict__.update(attributes)
