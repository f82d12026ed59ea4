"""Grouping a model's parameters into per-layer blocks, the unit the NTK is summed over, and where each is used."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from torch import nn

from regimescope.ntk.rules.base import LayerRule
from regimescope.ntk.rules.registry import rule_for

ROOT_NAME = "(root)"
"""Layer name of parameters owned directly by the root module."""


@dataclass(frozen=True)
class ParamUse:
    """One module attribute holding a parameter (a tied parameter has several).

    Attributes:
        module_name: Qualified module name (``""`` for the root).
        local_name: Attribute name on that module (``"weight"``, ``"bias"``, ...).
    """

    module_name: str
    local_name: str


@dataclass(frozen=True)
class ParamBlock:
    """The selected parameters owned by one module: one term ``K_l`` of ``K = sum_l K_l``.

    Attributes:
        name: The layer name (the module's qualified name, :data:`ROOT_NAME` for the root).
        module: The owning module.
        param_names: Qualified names, as ``model.named_parameters()`` gives them.
        local_names: The attribute names on ``module``, same order.
        uses: For each parameter, every module attribute that holds it (first: the owner).
        rules: The exact rule of each use's module, by module name (``None``: no rule covers it).
    """

    name: str
    module: nn.Module
    param_names: tuple[str, ...]
    local_names: tuple[str, ...]
    uses: tuple[tuple[ParamUse, ...], ...]
    rules: tuple[tuple[str, LayerRule | None], ...]

    @property
    def covered(self) -> bool:
        """Whether a layer rule covers every use of every parameter (the block can skip the generic path)."""
        return all(rule is not None for _, rule in self.rules)

    @property
    def exclusive(self) -> bool:
        """Whether every parameter is used by the owning module only (the Gram form then applies)."""
        return all(len(uses) == 1 for uses in self.uses)

    @property
    def use_modules(self) -> tuple[str, ...]:
        """Names of the modules using the block's parameters."""
        return tuple(name for name, _ in self.rules)


def parameter_blocks(model: nn.Module, include_frozen: bool = False) -> list[ParamBlock]:
    """Group the parameters of ``model`` by the module that owns them.

    A parameter tied between modules is counted once, in the block of the first module that owns it
    (``named_modules`` order); its other holders are recorded as further uses.

    Args:
        model: The model.
        include_frozen: Include parameters with ``requires_grad=False``.

    Returns:
        The non-empty blocks in module order.
    """
    owners: dict[int, str] = {}
    uses: dict[int, list[ParamUse]] = {}
    entries: dict[str, list[tuple[str, str, int]]] = {}
    modules = dict(model.named_modules())
    for module_name, module in modules.items():
        for local, param in module._parameters.items():
            if param is None:
                continue
            uses.setdefault(id(param), []).append(ParamUse(module_name, local))
            if id(param) in owners:
                continue
            owners[id(param)] = module_name
            if not (param.requires_grad or include_frozen):
                continue
            full = f"{module_name}.{local}" if module_name else local
            entries.setdefault(module_name, []).append((full, local, id(param)))
    blocks = []
    for module_name, names in entries.items():
        block_uses = tuple(tuple(uses[key]) for _, _, key in names)
        use_modules = dict.fromkeys(use.module_name for group in block_uses for use in group)
        blocks.append(
            ParamBlock(
                name=module_name or ROOT_NAME,
                module=modules[module_name],
                param_names=tuple(full for full, _, _ in names),
                local_names=tuple(local for _, local, _ in names),
                uses=block_uses,
                rules=tuple((name, rule_for(modules[name])) for name in use_modules),
            )
        )
    return blocks


def layer_names(model: nn.Module, include_frozen: bool = False) -> list[str]:
    """The layer names of ``model``'s parameter blocks, in order: the keys of a ``per_layer`` kernel."""
    return [block.name for block in parameter_blocks(model, include_frozen)]


def select_blocks(blocks: list[ParamBlock], layers: Collection[str]) -> list[ParamBlock]:
    """The blocks of ``blocks`` named in ``layers``, in model order.

    Raises:
        TypeError: When ``layers`` is a string rather than a collection of names.
        ValueError: When a name is not a block of the model, or ``layers`` is empty.
    """
    if isinstance(layers, str):
        raise TypeError(f"`layers` must be a collection of layer names, not a string; received {layers!r}. "
                        f"Write layers=[{layers!r}].")
    wanted = set(layers)
    known = [block.name for block in blocks]
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        problem = f"names no parameter block: {unknown}" if unknown else "is empty"
        raise ValueError(f"`layers` {problem}. The model's blocks are {known}; pick among them (a frozen layer "
                         "has a block only with include_frozen=True).")
    return [block for block in blocks if block.name in wanted]
