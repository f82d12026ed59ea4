"""The contract of a per-layer exact rule and the data it keeps from the collection passes.

A rule turns what one forward pass (the layer's input) and the output backward passes (the gradient of each output
``o`` with respect to the layer's output) provide into the layer's per-sample parameter gradients, without
differentiating the model again. With ``x`` recorded as ``(n, T, D)`` tokens and the output gradients as
``(k, n, T, C)`` (output-major, the layout batched backward passes produce), every rule here has per-sample
gradients of the form ``sum_t g_{o,t} (x) h(a_t)`` (an outer product, or an elementwise product for norm layers).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn


@dataclass
class LayerData:
    """What the collection passes keep of one layer on a batch of ``n`` examples.

    Attributes:
        record: ``(n, T, D)`` input tokens (``(n, T)`` token ids for an embedding); ``None`` for per-sample layers.
        grads: ``(k, n, T, C)`` gradients of each output with respect to the layer output, in token form;
            ``None`` for per-sample layers.
        per_sample: ``local name -> (k, n, P)`` per-sample gradients, kept instead of the factors by per-sample
            layers (see :func:`regimescope.ntk.planning.plan.make_plan`).
    """

    record: torch.Tensor | None = None
    grads: torch.Tensor | None = None
    per_sample: dict[str, torch.Tensor] = field(default_factory=dict)

    def select(self, rows: slice, outputs: slice) -> LayerData:
        """The data of examples ``rows`` and outputs ``outputs``."""
        return LayerData(
            record=None if self.record is None else self.record[rows],
            grads=None if self.grads is None else self.grads[outputs, rows],
            per_sample={name: g[outputs, rows] for name, g in self.per_sample.items()},
        )


class LayerRule(abc.ABC):
    """An exact rule for the parameter gradients of one layer type.

    Class attributes:
        name: Short name shown in plans.
        parameters: The parameter attributes the rule computes gradients of. A module holding any other parameter
            (``weight_g``/``weight_v`` of the legacy hook-based ``nn.utils.weight_norm``, ``weight_orig`` of the
            legacy ``nn.utils.spectral_norm``) is not the layer the rule knows and takes the generic path.
        gram: Whether the rule has the Gram-Hadamard form (:meth:`input_gram`): the block kernel is
            ``sum_{t,s} <g_{i,t}, g_{j,s}> (<a_{i,t}, a_{j,s}> + [bias])`` and no per-sample gradient is formed.
        compact: Whether the collection passes reduce the layer's data to per-sample gradients right away (they
            are smaller than the factors).
        channels_first: Whether output gradients are laid out ``(k, n, C, T)`` in memory (and handed out as the
            transposed ``(k, n, T, C)`` view): the layout autograd produces for convolutions, and the one the
            per-sample product ``g^T a`` reads without a copy.
    """

    name: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]] = ("weight", "bias")
    gram: ClassVar[bool] = False
    compact: ClassVar[bool] = False
    channels_first: ClassVar[bool] = False

    @abc.abstractmethod
    def applies(self, module: nn.Module) -> bool:
        """Whether the rule is exact for ``module`` (its type's own forward, supported options)."""

    @abc.abstractmethod
    def record(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The layer input ``x`` (batch first) as the ``(n, T, D)`` tokens the rule needs (detached)."""

    @abc.abstractmethod
    def grad_tokens(self, module: nn.Module, g: torch.Tensor) -> torch.Tensor:
        """Output gradients ``(b, n, *output shape)`` as ``(b, n, T, C)``, positions aligned with :meth:`record`."""

    @abc.abstractmethod
    def per_sample(self, module: nn.Module, local: str, record: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """Per-sample gradients ``(k, n, P)`` of the parameter ``local`` (flattened row-major).

        Args:
            module: The layer.
            local: ``"weight"`` or ``"bias"``.
            record: ``(n, T, D)`` from :meth:`record`.
            grads: ``(k, n, T, C)`` output gradients in token form.
        """

    def per_sample_flops(self, module: nn.Module, tokens: int, record_width: int, grad_width: int) -> int:
        """Multiply-adds of :meth:`per_sample` for one example and one output (all parameters of the layer)."""
        return tokens * grad_width * max(record_width, 1)


class GramRule(LayerRule):
    """A rule that also has the Gram-Hadamard form: its blocks need no per-sample gradient at all."""

    gram: ClassVar[bool] = True

    @abc.abstractmethod
    def input_gram(self, module: nn.Module, ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
        """``(n1 T1, n2 T2)`` Gram of the input tokens of two batches (may be boolean)."""

