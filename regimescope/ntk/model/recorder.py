"""Forward hooks that record, for every call of the watched layers, the rule's input tokens and the layer output.

A layer run once for the whole batch is *broadcast*: Hugging Face GPT-2 and BERT embed ``(1, T)`` position ids,
nanoGPT embeds ``arange(T)`` with no batch dimension at all, and the model adds the result to the ``(n, T, C)``
token embeddings. The backward pass through that sum sees only the batch's total gradient, so no per-example
gradient of the layer can be read from it. Given the batch size ``n``, the recorder expands such a call's input and
output to ``n`` identical rows (:class:`Expansion`) and hands the rest of the model the expanded output; the gradient
with respect to row ``i`` is then example ``i``'s own, and the layer's rule applies. The expansion must not change
what the model computes (a later ``squeeze(0)``, a sum over the leading dimension, or a layer that is not broadcast
but does not see the batch first would): the probe pass tries it, checks the outputs against a forward without it
and keeps it only then (:func:`regimescope.ntk.planning.profile.profile_set`), and the collection passes expand
exactly the layers the probe pass kept.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import torch
from torch import nn

from regimescope.ntk.rules.base import LayerRule


class Expansion(enum.Enum):
    """How a layer call shared by the whole batch gets one row per example."""

    LEADING = "leading"
    """Input and output lead with 1 (Hugging Face's ``(1, T)`` position ids): that dimension is expanded."""
    NEW = "new"
    """Input and output do not lead with the batch (nanoGPT's ``wpe(arange(T))``): a batch dimension is added."""

    def apply(self, t: torch.Tensor, n: int) -> torch.Tensor:
        """``t`` as ``n`` identical rows (a view)."""
        if self is Expansion.LEADING:
            return t.expand(n, *t.shape[1:])
        return t.unsqueeze(0).expand(n, *t.shape)

    @staticmethod
    def of(x: torch.Tensor, output: torch.Tensor, n: int) -> Expansion | None:
        """The expansion a call with input ``x`` and ``output`` needs in a forward over ``n`` examples (``None``:
        either leads with ``n``, as a batch-first layer's do)."""
        if x.dim() == 0 or output.dim() == 0 or n in (x.shape[0], output.shape[0]):
            return None
        return Expansion.LEADING if x.shape[0] == output.shape[0] == 1 else Expansion.NEW


class Recorder:
    """Records ``(tokens, output)`` for each call of each watched module, while it is entered as a context.

    The output tensor ``z`` is kept so that gradients with respect to it can be asked for; the hook hands the
    rest of the model a clone, so an in-place operation after the layer (``ReLU(inplace=True)``) cannot modify
    ``z``. Hooks are removed on exit, also after an error.

    Args:
        modules: ``name -> (module, rule)``.
        batch: The forward's batch size ``n``; ``None``: nothing is expanded.
        expansions: The layers to expand to ``batch`` rows and how (what the probe pass kept); ``None`` with a
            ``batch``: every call that does not lead with ``n`` is expanded as :meth:`Expansion.of` says (the probe
            pass's trial; see the module docstring).

    Attributes:
        expanded: The layers whose calls were expanded, and how.
        mixed: In a trial, the layers whose calls needed different expansions (some batch-first, some shared):
            no single expansion of the layer is right for the collection passes.
    """

    def __init__(
        self,
        modules: dict[str, tuple[nn.Module, LayerRule]],
        batch: int | None = None,
        expansions: Mapping[str, Expansion] | None = None,
    ) -> None:
        self.modules = modules
        self.batch = batch
        self.calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in modules}
        self.expanded: dict[str, Expansion] = {}
        self.mixed: set[str] = set()
        self._given = expansions
        self._handles: list[Any] = []

    def _expansion(self, name: str, x: torch.Tensor, output: torch.Tensor) -> Expansion | None:
        if self.batch is None:
            return None
        if self._given is not None:
            return self._given.get(name)
        found = Expansion.of(x, output, self.batch)
        if self.calls[name] and self.expanded.get(name) is not found:
            self.mixed.add(name)
        return found

    def _hook(self, name: str, rule: LayerRule) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            x = args[0] if args else next(iter(kwargs.values()))
            expansion = self._expansion(name, x, output)
            if expansion is not None:
                self.expanded[name] = expansion
                x, output = expansion.apply(x, self.batch), expansion.apply(output, self.batch)
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
