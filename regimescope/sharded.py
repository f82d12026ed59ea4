"""Measuring a model sharded with FSDP2 (``torch.distributed.fsdp.fully_shard``) through an unsharded replica.

Under ``fully_shard`` each rank holds a slice (``Shard(0)``: a block of rows) of every parameter, and running the
model starts all-gathers that every rank must join, so no rank can run it alone. The kernel is additive over
parameters, but a slice's contribution still needs the whole network's forward and backward passes, which need
every parameter in full. So every rank gathers the full parameters (``DTensor.full_tensor()``, in one fixed order:
the same collectives on every rank) into a replica: the same module tree with the original classes, plain
parameters and no hooks, whose forward runs no collective. The monitor measures the replica: with
``distributed="split_layers"`` every rank computes the kernel blocks of its share of the layers and one all-reduce
sums them (:mod:`regimescope.split_kernel`); by default rank 0 measures the replica alone.

Cost: the replica keeps one unsharded copy of the parameters on every rank, and each measurement all-gathers them.
What is refused (:func:`check_sharding`): ``FullyShardedDataParallel`` (FSDP1, flat parameters), and ``DTensor``
parameters that ``fully_shard`` does not manage on a one-dimensional mesh (tensor parallelism, HSDP), whose modules
may depend on the sharded layout.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

_FSDP_STATE_PREFIX = "__composable_api_state_key"
"""Prefix of the attributes in which ``fully_shard`` keeps its state on a module (left out of the replica)."""


def _sharded_parameters(model: nn.Module) -> list[str]:
    """Names of ``model``'s parameters that are ``DTensor``s."""
    from torch.distributed.tensor import DTensor

    return [name for name, p in model.named_parameters() if isinstance(p, DTensor)]


def _fully_sharded(model: nn.Module) -> list[str]:
    """Names of the ``DTensor`` parameters that ``fully_shard`` manages on a one-dimensional mesh as ``Shard(0)``."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor, Shard

    managed = {id(p) for module in model.modules() if isinstance(module, FSDPModule) for p in module.parameters()}
    return [
        name
        for name, p in model.named_parameters()
        if isinstance(p, DTensor) and id(p) in managed and p.device_mesh.ndim == 1 and p.placements == (Shard(0),)
    ]


def check_sharding(model: nn.Module) -> bool:
    """Whether ``model`` is sharded by ``fully_shard`` (then it is measured through a :class:`ShardedReplica`).

    Checks only the model's own structure, so every rank decides alike, without communicating.

    Returns:
        ``True`` for an FSDP2 model, ``False`` for a model every rank holds whole.

    Raises:
        ValueError: For a sharding regimescope cannot measure (``FullyShardedDataParallel``, tensor parallelism,
            HSDP), naming the parameters or modules and what to do instead.
    """
    if not dist.is_available():
        return False
    from torch.distributed.fsdp import FullyShardedDataParallel

    wrapped = [name or "<root>" for name, m in model.named_modules() if isinstance(m, FullyShardedDataParallel)]
    if wrapped:
        raise ValueError(
            f"The model is wrapped in FullyShardedDataParallel (FSDP1; modules {wrapped[:3]}), whose flat parameters "
            "regimescope cannot read. Shard it with torch.distributed.fsdp.fully_shard (FSDP2), which regimescope "
            "measures through an unsharded replica, or train with DistributedDataParallel."
        )
    sharded = _sharded_parameters(model)
    unsupported = sorted(set(sharded) - set(_fully_sharded(model)))
    if unsupported:
        raise ValueError(
            f"The parameters {unsupported[:3]} are DTensors that fully_shard does not manage as Shard(0) on a "
            "one-dimensional mesh (tensor parallelism or HSDP), and regimescope measures only models that every "
            "rank holds whole (DDP) or that fully_shard shards on one mesh dimension (FSDP2). Attach the monitor to "
            "an unsharded copy of the model, or shard it with fully_shard alone."
        )
    return bool(sharded)


def _original_class(module: nn.Module) -> type[nn.Module]:
    """The module's class before ``fully_shard`` put ``FSDPModule`` in front of it."""
    from torch.distributed.fsdp import FSDPModule

    cls = type(module)
    return cls.__mro__[cls._orig_cls_mro_index] if isinstance(module, FSDPModule) else cls


def _plain_copy(module: nn.Module, parameter: Callable[[nn.Parameter], nn.Parameter]) -> nn.Module:
    """``module``'s tree with its original classes and attributes, ``parameter(p)`` for each parameter, the same
    buffers (shared), and no hooks; ``fully_shard``'s state and the methods it wrapped are left out."""
    cls = _original_class(module)
    copy = cls.__new__(cls)
    nn.Module.__init__(copy)
    own = set(copy.__dict__)
    for key, value in module.__dict__.items():
        wrapped = inspect.ismethod(value) and value.__self__ is module
        if key not in own and not key.startswith(_FSDP_STATE_PREFIX) and not wrapped:
            copy.__dict__[key] = value
    copy.training = module.training
    copy._buffers.update(module._buffers)
    copy._non_persistent_buffers_set.update(module._non_persistent_buffers_set)
    for name, p in module._parameters.items():
        copy._parameters[name] = None if p is None else parameter(p)
    for name, child in module._modules.items():
        copy._modules[name] = None if child is None else _plain_copy(child, parameter)
    return copy


class ShardedReplica:
    """An unsharded, hook-free replica of an FSDP2 model, refreshed from every rank's shards.

    Building it allocates the full parameters and communicates nothing; :meth:`refresh` all-gathers the current
    values. A parameter that is not a ``DTensor`` is shared with the model as is; tied parameters stay tied.

    Args:
        model: A model for which :func:`check_sharding` returned ``True``.

    Attributes:
        module: The replica (same module names, parameter names, classes and buffers as ``model``).
    """

    def __init__(self, model: nn.Module) -> None:
        from torch.distributed.tensor import DTensor

        self._pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        copies: dict[int, nn.Parameter] = {}

        def parameter(p: nn.Parameter) -> nn.Parameter:
            if not isinstance(p, DTensor):
                return p
            if id(p) not in copies:
                full = torch.empty(p.shape, dtype=p.dtype, device=p.to_local().device)
                copies[id(p)] = nn.Parameter(full, requires_grad=p.requires_grad)
                self._pairs.append((p, copies[id(p)]))
            return copies[id(p)]

        self.module = _plain_copy(model, parameter)

    def refresh(self) -> None:
        """Copy the model's current parameters into the replica: one all-gather per sharded parameter.

        Every rank must call it at the same point; the parameters are gathered in the model's module order, the
        same on every rank.
        """
        with torch.no_grad():
            for sharded, full in self._pairs:
                full.copy_(sharded.full_tensor())
