"""Choosing which modules' outputs are watched as representations and activation patterns."""

from __future__ import annotations

from torch import nn

from regimescope.ntk.model.blocks import parameter_blocks

PATTERN_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)
"""Modules whose on/off state (output > 0) defines an activation pattern."""

ACTIVATION_TYPES = PATTERN_TYPES + (nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Softplus, nn.Mish)
"""Modules whose outputs are hidden representations by default."""


def default_feature_layers(model: nn.Module) -> list[str]:
    """Outputs of the activation modules; when there are none, of every parameterised layer but the last."""
    names = [name for name, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    if names:
        return names
    return [b.name for b in parameter_blocks(model)[:-1] if b.name != "(root)"]


def default_pattern_layers(model: nn.Module) -> list[str]:
    """Names of the ReLU-family modules."""
    return [name for name, m in model.named_modules() if isinstance(m, PATTERN_TYPES)]


def normalization_layers(model: nn.Module) -> list[str]:
    """Names of the BatchNorm modules that keep running statistics (``track_running_stats=True``)."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    ]


def resolve_layers(model: nn.Module, names: list[str], argument: str) -> dict[str, nn.Module]:
    """Map layer names to modules.

    Raises:
        ValueError: For a name that is not a submodule, listing a few valid names.
    """
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        sample = ", ".join(repr(n) for n in list(modules)[1:8])
        raise ValueError(f"`{argument}` names {missing}, which are not submodules of the model; valid names include {sample}.")
    return {name: modules[name] for name in names}
