"""Sharing the per-layer NTK among the ranks of a distributed job: each rank computes some blocks, one all-reduce sums.

The kernel is additive over parameter blocks, ``K = sum_l K_l``, and every rank of a data-parallel job holds the same
model, so with the blocks partitioned into shares ``S_0, ..., S_{R-1}`` rank ``r`` contributes

    C_r[l] = K_l  if l in S_r,  else 0,

and one all-reduce gives every rank ``sum_r C_r[l] = K_l`` for every block ``l``. The shares balance the engine's
estimated cost of each block (:func:`block_costs`) by :func:`assign_blocks`, and rank 0's assignment is the one
every rank uses. A failure on one rank travels in the same all-reduce (a flag per rank after the kernels), so every
rank raises the same :class:`SplitKernelError` instead of waiting for a rank that will never arrive.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import nn

from regimescope.capture.capture import layer_kernels, measured_model
from regimescope.capture.config import CaptureConfig
from regimescope.distributed import from_main_process, rank, world_size
from regimescope.ntk import NtkPlan, compute_dtype, plan_ntk
from regimescope.probe import Probe


class KernelSharing(str, enum.Enum):
    """How the ranks of a distributed job share the per-layer kernel of a measurement (``RegimeMonitor(distributed=)``).

    Outside a distributed job both compute the whole kernel in the one process.
    """

    RANK0 = "rank0"
    """Rank 0 computes every block while the other ranks wait for its result (one broadcast of the record). Time:
    the whole kernel on one process; no extra communication."""
    SPLIT_LAYERS = "split_layers"
    """Every rank computes the blocks of its share, balanced by estimated multiply-adds, and one all-reduce of
    ``L n^2`` scalars (``L`` blocks, ``n`` probe examples) gives every rank the whole per-layer kernel; rank 0 then
    does the rest of the measurement. Each rank still runs the forward and backward passes that collect its own
    blocks' data, so the speed-up is at most the number of ranks, less where those passes dominate or one block
    outweighs the others (``benchmarks/split_layers.py`` measures it)."""


DEFAULT_SHARING = KernelSharing.RANK0
"""The default: rank 0 measures, which needs no agreement about layers between ranks."""


class SplitKernelError(RuntimeError):
    """Raised on every rank when computing some rank's share of the kernel blocks failed."""


def parse_sharing(value: str | KernelSharing) -> KernelSharing:
    """The :class:`KernelSharing` named by ``value``.

    Raises:
        ValueError: When ``value`` names none, listing the allowed values.
    """
    try:
        return KernelSharing(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in KernelSharing)
        raise ValueError(
            f"`distributed` must be one of {allowed}; received {value!r}. Use 'split_layers' to have every rank "
            "compute a share of the kernel's layer blocks."
        ) from None


def block_costs(plan: NtkPlan, examples: int) -> dict[str, int]:
    """Estimated cost of each block of ``plan``, in block order: what :func:`assign_blocks` balances.

    A block computed by a layer rule costs the plan's multiply-adds. The plan gives no estimate for a generic block
    (``flops == 0``); it is taken as ``n^2 P``, the Gram of its per-sample gradients for one output (``n`` examples,
    ``P`` parameters).

    Args:
        plan: The plan of the per-layer kernel (:func:`regimescope.ntk.plan_ntk` with ``per_layer=True``).
        examples: ``n``, the probe's examples.

    Returns:
        ``layer name -> cost``.
    """
    return {block.name: block.flops or examples * examples * block.parameters for block in plan.blocks}


def assign_blocks(costs: Mapping[str, float], world: int) -> dict[str, int]:
    """Give each block to a rank so that the ranks' summed costs are balanced (longest processing time first).

    Blocks are taken from the most to the least costly (ties in the order of ``costs``), each going to the rank with
    the least cost so far (ties to the lowest rank). The result depends on ``costs`` and ``world`` only, so it is
    the same on every rank; its largest load is at most ``4/3`` of the best possible.

    Args:
        costs: ``layer name -> cost``, in block order.
        world: Number of ranks.

    Returns:
        ``layer name -> rank``, in the order of ``costs``: every block exactly once.

    Raises:
        ValueError: When ``world`` is not a positive int, or a cost is negative.
    """
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"`world` must be a positive number of ranks; received {world!r}.")
    negative = sorted(name for name, cost in costs.items() if cost < 0)
    if negative:
        raise ValueError(f"Block costs must be >= 0; received negative costs for {negative}.")
    loads = [0.0] * world
    owners: dict[str, int] = {}
    order = sorted(enumerate(costs.items()), key=lambda item: (-item[1][1], item[0]))
    for _, (name, cost) in order:
        owner = min(range(world), key=lambda r: (loads[r], r))
        owners[name] = owner
        loads[owner] += cost
    return {name: owners[name] for name in costs}


def layer_assignment(model: nn.Module, probe: Probe, config: CaptureConfig) -> dict[str, int]:
    """Rank 0's balanced assignment of ``model``'s kernel blocks to the ranks, on every rank.

    Every rank must call this at the same point (it holds one broadcast). Rank 0 plans the per-layer kernel
    (:func:`regimescope.ntk.plan_ntk`, a probe pass on two examples) and assigns the blocks by :func:`block_costs`;
    planning only on rank 0 guarantees that every rank uses the same assignment even where a plan would depend on
    the rank's free memory.

    Returns:
        ``layer name -> rank`` for every block, in model order.
    """

    def assign() -> dict[str, int]:
        plan = plan_ntk(model, probe.inputs, **config.kernel_options())
        return assign_blocks(block_costs(plan, probe.size), world_size())

    return from_main_process(assign)


def split_layer_kernels(
    model: nn.Module, probe: Probe, config: CaptureConfig, owners: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """The whole per-layer kernel on every rank, each rank computing the blocks ``owners`` gives it.

    Every rank must call this at the same point with the same ``owners`` (it holds one all-reduce, two collectives
    after a failure). The all-reduced buffer holds the ``L`` blocks, ``(n, n)`` each, then one failure flag per rank.

    Args:
        model: The model, the same on every rank (unwrapped).
        probe: The probe, the same on every rank, on the model's device.
        config: Capture settings.
        owners: ``layer name -> rank`` for every block (:func:`layer_assignment`).

    Returns:
        ``layer name -> (n, n)`` kernel block on the model's device, in the order of ``owners``.

    Raises:
        SplitKernelError: On every rank when some rank's share failed; it names the failed ranks and their errors
            (the failed rank's own error is chained).
    """
    names = list(owners)
    here, ranks = rank(), world_size()
    n = probe.size
    size = len(names) * n * n
    buffer = torch.zeros(size + ranks, dtype=compute_dtype(model, config.dtype), device=probe.device)
    blocks = buffer[:size].view(len(names), n, n)
    share = [name for name in names if owners[name] == here]
    failure: Exception | None = None
    try:
        computed = layer_kernels(measured_model(model, probe, config), probe, config, share) if share else {}
        for name, kernel in computed.items():
            blocks[names.index(name)] = kernel
    except Exception as error:
        failure = error
        blocks.zero_()
        buffer[size + here] = 1
    dist.all_reduce(buffer)
    failed = [r for r in range(ranks) if buffer[size + r] != 0]
    if failed:
        messages: list[str | None] = [None] * ranks
        mine = None if failure is None else f"{type(failure).__name__}: {failure}"
        dist.all_gather_object(messages, mine)
        reasons = "; ".join(f"rank {r}: {messages[r]}" for r in failed)
        message = f"Computing the kernel blocks of the layers split across ranks failed ({reasons})."
        raise SplitKernelError(message) from failure
    return {name: blocks[index] for index, name in enumerate(names)}
