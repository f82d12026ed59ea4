"""Suspending the user's backward hooks while the engine differentiates the model."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator

from torch import nn
from torch.nn.modules import module as module_globals

_MODULE_REGISTRIES = ("_backward_hooks", "_backward_pre_hooks")
_GLOBAL_REGISTRIES = ("_global_backward_hooks", "_global_backward_pre_hooks")


@contextlib.contextmanager
def suspended_backward_hooks(model: nn.Module) -> Iterator[None]:
    """Detach every module and global backward hook for the duration of the block, and put them back after.

    Backward hooks observe the user's own gradients; the engine's passes would feed them kernel-internal ones (and
    full backward hooks wrap modules in an ``autograd.Function`` that ``torch.func`` transforms refuse). The hook
    registries themselves are swapped for empty ones and restored (even after an error), so the handles the user
    holds stay valid. Forward hooks stay active: they can change the function whose kernel is measured.
    """
    saved_modules = [(m, [m.__dict__[name] for name in _MODULE_REGISTRIES]) for m in model.modules()]
    saved_globals = [getattr(module_globals, name) for name in _GLOBAL_REGISTRIES]
    try:
        for m, _ in saved_modules:
            for name in _MODULE_REGISTRIES:
                m.__dict__[name] = OrderedDict()
        for name in _GLOBAL_REGISTRIES:
            setattr(module_globals, name, OrderedDict())
        yield
    finally:
        for m, registries in saved_modules:
            for name, registry in zip(_MODULE_REGISTRIES, registries):
                m.__dict__[name] = registry
        for name, registry in zip(_GLOBAL_REGISTRIES, saved_globals):
            setattr(module_globals, name, registry)
