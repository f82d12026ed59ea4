"""The feed-forward pair inside PyTorch's own transformer layers, which ``torch.fx`` keeps as leaf modules.

``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` compute ``linear2(dropout(activation(linear1(x))))``
in their feed-forward block; ``torch.fx`` does not trace into ``torch.nn`` modules, so the graph walk never sees
those two layers. Their hidden units form a pair like any MLP's: ``delta_k`` is conserved when the activation is
ReLU (the default) or another positively homogeneous one, and not with GELU or a custom callable.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

TRANSFORMER_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
"""Leaf modules whose feed-forward pair is added by name."""

_HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU, nn.PReLU)
_HOMOGENEOUS_FUNCTIONS = (F.relu, F.leaky_relu)


def activation_label(layer: nn.Module) -> str | None:
    """``None`` when the feed-forward activation of ``layer`` is positively homogeneous, else its label."""
    activation = layer.activation
    if activation in _HOMOGENEOUS_FUNCTIONS or isinstance(activation, _HOMOGENEOUS):
        return None
    name = getattr(activation, "__name__", type(activation).__name__)
    return f"the activation {name}"
