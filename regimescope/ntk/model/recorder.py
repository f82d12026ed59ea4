"""Forward hooks that record, for every call of the watched layers, the rule's input tokens and the layer output.

A layer run once for the whole batch on a leading dimension of 1 (Hugging Face GPT-2's position embedding reads
``position_ids`` of shape ``(1, T)``, and the model adds its ``(1, T, C)`` output to the ``(n, T, C)`` token
embeddings) is *broadcast*: the backward pass through the sum sees only the batch's total gradient, so no
per-example gradient of the layer can be read from it. Given the batch size ``n``, the recorder expands such a
call's input and output to ``n`` identical rows and hands the rest of the model the expanded output; the gradient
with respect to row ``i`` is then example ``i``'s own, and the layer's rule applies. The expansion must not change
what the model computes (a later ``squeeze(0)`` or a sum over the leading dimension would): the probe pass checks
the outputs against a forward without it (:func:`regimescope.ntk.planning.profile.profile_set`).
"""

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
        batch: The forward's batch size ``n``; a call whose input and output lead with 1 when ``n > 1`` is broadcast
            and expanded to ``n`` rows (see the module docstring). ``None``: nothing is expanded.

    Attributes:
        broadcast: Names of the layers whose calls were expanded.
    """

    def __init__(self, modules: dict[str, tuple[nn.Module, LayerRule]], batch: int | None = None) -> None:
        self.modules = modules
        self.batch = batch
        self.calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in modules}
        self.broadcast: set[str] = set()
        self._handles: list[Any] = []

    def _broadcast(self, x: torch.Tensor, output: torch.Tensor) -> bool:
        n = self.batch
        return n is not None and n > 1 and x.dim() > 0 and output.dim() > 0 and x.shape[0] == output.shape[0] == 1

    def _hook(self, name: str, rule: LayerRule) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            x = args[0] if args else next(iter(kwargs.values()))
            if self._broadcast(x, output):
                self.broadcast.add(name)
                x, output = (t.expand(self.batch, *t.shape[1:]) for t in (x, output))
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
