"""Grouping a model's parameters into per-layer blocks, the unit the NTK is summed over."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ROOT_NAME = "(root)"
"""Layer name of parameters owned directly by the root module."""

_FACTORABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class ParamBlock:
    """The trainable parameters owned by one module: one term ``K_l`` of ``K = sum_l K_l``.

    Attributes:
        name: The layer name (the module's qualified name, :data:`ROOT_NAME` for the root).
        module: The owning module.
        param_names: Qualified names, as ``model.named_parameters()`` gives them.
        local_names: The attribute names on ``module`` (``"weight"``, ``"bias"``, ...), same order.
        factorable: Whether the layer's block can come from its inputs and output gradients (see
            :mod:`regimescope.ntk.factored`): a plain ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` with numeric
            zero padding and one group, none of whose parameters is shared with another module.
    """

    name: str
    module: nn.Module
    param_names: tuple[str, ...]
    local_names: tuple[str, ...]
    factorable: bool


def _plain_layer(module: nn.Module) -> bool:
    if type(module).forward not in {cls.forward for cls in _FACTORABLE_TYPES}:
        return False
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    return True


def parameter_blocks(model: nn.Module, include_frozen: bool = False) -> list[ParamBlock]:
    """Group the parameters of ``model`` by the module that owns them.

    A parameter tied between modules is counted once, in the block of the first module that owns it
    (``named_modules`` order), and neither owner is factorable (the factored rule would miss the other use).

    Args:
        model: The model.
        include_frozen: Include parameters with ``requires_grad=False``.

    Returns:
        The non-empty blocks in module order.
    """
    owners: dict[int, str] = {}
    shared_modules: set[str] = set()
    entries: dict[str, list[tuple[str, str]]] = {}
    modules: dict[str, nn.Module] = {}
    for module_name, module in model.named_modules():
        for local, param in module._parameters.items():
            if param is None:
                continue
            if id(param) in owners:
                shared_modules.update({owners[id(param)], module_name})
                continue
            owners[id(param)] = module_name
            if not (param.requires_grad or include_frozen):
                continue
            full = f"{module_name}.{local}" if module_name else local
            entries.setdefault(module_name, []).append((full, local))
            modules[module_name] = module
    blocks = []
    for module_name, names in entries.items():
        module = modules[module_name]
        locals_ = tuple(local for _, local in names)
        factorable = (
            _plain_layer(module)
            and module_name not in shared_modules
            and set(locals_) <= {"weight", "bias"}
        )
        blocks.append(
            ParamBlock(
                name=module_name or ROOT_NAME,
                module=module,
                param_names=tuple(full for full, _ in names),
                local_names=locals_,
                factorable=factorable,
            )
        )
    return blocks


def block_size(block: ParamBlock, params: dict[str, torch.Tensor]) -> int:
    """Number of scalar parameters in ``block``."""
    return sum(params[name].numel() for name in block.param_names)
