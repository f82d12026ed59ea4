"""Forward hooks that record, for every call of the watched layers, the rule's input tokens and the layer output."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import torch
from torch import nn

from regimescope.ntk.rules.base import LayerRule


class Recorder:
    """Records ``(tokens, output)`` for each call of each watched module, while it is entered as a context.

    The output tensor ``z`` is kept so that gradients with respect to it can be asked for; the hook hands the
    rest of the model a clone, so an in-place operation after the layer (``ReLU(inplace=True)``) cannot modify
    ``z``. Hooks are removed on exit, also after an error.

    Args:
        modules: ``name -> (module, rule)``.
    """

    def __init__(self, modules: dict[str, tuple[nn.Module, LayerRule]]) -> None:
        self.modules = modules
        self.calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in modules}
        self._handles: list[Any] = []

    def _hook(self, name: str, rule: LayerRule) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            x = args[0] if args else next(iter(kwargs.values()))
            self.calls[name].append((rule.record(module, x.detach()), output))
            return output.clone()

        return hook

    def __enter__(self) -> Recorder:
        for name, (module, rule) in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name, rule), with_kwargs=True))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def batch_first(self, name: str, n: int) -> bool:
        """Whether ``name`` was called and every call's input and output lead with the batch dimension ``n``."""
        calls = self.calls[name]
        return bool(calls) and all(r.shape[0] == n and z.shape[0] == n for r, z in calls)

    def outputs(self, names: list[str]) -> list[torch.Tensor]:
        """The recorded outputs of ``names``, call after call."""
        return [z for name in names for _, z in self.calls[name]]

    def records(self, name: str) -> torch.Tensor:
        """The tokens of all calls of ``name``, concatenated along positions: ``(n, T, D)``."""
        parts = [r for r, _ in self.calls[name]]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
