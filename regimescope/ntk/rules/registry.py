"""The rule registry: which exact rule, if any, computes a module's block.

The registry sits above the rule modules: it imports them, and they import only the contract
(:mod:`regimescope.ntk.rules.base`) and the rules they extend, never the registry, so there is no import cycle. A module no rule applies to takes the generic ``torch.func`` path.
"""

from __future__ import annotations

from torch import nn

from regimescope.ntk.rules.base import LayerRule
from regimescope.ntk.rules.conv import CONV_RULE
from regimescope.ntk.rules.embedding import EMBEDDING_RULE
from regimescope.ntk.rules.linear import LINEAR_RULE
from regimescope.ntk.rules.norm import NORM_RULE
from regimescope.ntk.rules.transposed_linear import TRANSPOSED_LINEAR_RULE

RULES: tuple[LayerRule, ...] = (LINEAR_RULE, TRANSPOSED_LINEAR_RULE, CONV_RULE, EMBEDDING_RULE, NORM_RULE)
"""The registered rules, tried in this order."""


def rule_for(module: nn.Module) -> LayerRule | None:
    """The first registered rule that applies to ``module``; ``None`` sends it to the generic path.

    A rule applies only when it knows every parameter the module holds itself: a hook-based reparametrization
    (the legacy ``nn.utils.weight_norm`` / ``spectral_norm``) replaces ``weight`` by parameters the rule cannot
    see through. The ``torch.nn.utils.parametrize`` kind moves the weight into a ``ParametrizationList`` module,
    whose block takes the generic path, while the rule still computes the module's own bias exactly.
    """
    own = {name for name, param in module._parameters.items() if param is not None}
    for rule in RULES:
        if rule.applies(module):
            return rule if own <= set(rule.parameters) else None
    return None
