"""The exact rule for Hugging Face's ``transformers.pytorch_utils.Conv1D`` (GPT, GPT-2): a transposed linear layer.

``y = x W + b`` with ``W`` of shape ``(in, out)``, applied at every position, so everything a linear layer's rule
does holds with the weight's two dimensions swapped: the per-sample weight gradient is ``dW = sum_t a_t g_t^T``
(``(D, C)``, the parameter's own layout) and the Gram form is the linear one.

The class is recognised without importing ``transformers``: a module can only be a ``Conv1D`` when
``transformers.pytorch_utils`` has been imported already, so the rule looks it up in ``sys.modules``.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from regimescope.ntk.rules.linear import LinearRule

_MODULE = "transformers.pytorch_utils"
"""Where Hugging Face defines ``Conv1D``."""


def hf_conv1d_class() -> type[nn.Module] | None:
    """``transformers.pytorch_utils.Conv1D`` if ``transformers`` has been imported, else ``None`` (not importing it)."""
    module = sys.modules.get(_MODULE)
    return getattr(module, "Conv1D", None) if module is not None else None


class TransposedLinearRule(LinearRule):
    """Hugging Face ``Conv1D`` (and subclasses that keep its forward): inputs of any leading shape, as
    ``nn.Linear``."""

    name = "hf_conv1d"

    def applies(self, module: nn.Module) -> bool:
        """Any module whose forward is ``transformers.pytorch_utils.Conv1D.forward``."""
        conv1d = hf_conv1d_class()
        return conv1d is not None and isinstance(module, conv1d) and type(module).forward is conv1d.forward

    def per_sample(self, module: nn.Module, local: str, record: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """``(k, n, D*C)`` weight gradients ``a^T g`` per output and example (the ``(in, out)`` layout), or
        ``(k, n, C)`` bias gradients."""
        if local == "bias":
            return grads.sum(2)
        k, n, _, c = grads.shape
        out = grads.new_empty(k, n, record.shape[2], c)
        records = record.transpose(-1, -2)
        for o in range(k):
            torch.bmm(records, grads[o], out=out[o])
        return out.view(k, n, -1)


TRANSPOSED_LINEAR_RULE = TransposedLinearRule()
