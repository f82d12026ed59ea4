"""The ways the engine can compute an NTK block, selected by name like neural-tangents' ``NtkImplementation``."""

from __future__ import annotations

import enum


class Implementation(enum.Enum):
    """How the engine computes each parameter block's kernel. All members give the same kernel.

    Costs are for a block with ``P`` parameters, a probe of ``n`` inputs and ``k`` outputs.
    """

    AUTO = "auto"
    """Default. Eval mode: :attr:`FACTORED` for ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` whose parameters are
    used only through their own forward, :attr:`PER_SAMPLE` for every other parameter. Train mode with
    batch-coupled modules (BatchNorm in training): :attr:`FULL_BATCH`."""

    FACTORED = "factored"
    """One forward and ``k`` backward passes give each layer's inputs ``a`` and output gradients ``g``; the block
    is ``sum_{t,s} <g_it, g_js><a_it, a_js>`` (Gram-Hadamard form, memory ``O(n^2 T^2)``) or the per-sample
    gradient ``sum_t g_it a_it^T`` formed from them (memory ``O(n k P)``), whichever costs less. Linear and
    convolution layers only; other blocks fall back to :attr:`PER_SAMPLE`."""

    PER_SAMPLE = "per_sample"
    """``torch.func.vmap(jacrev)`` per-sample Jacobians of each block, chunked over samples: memory
    ``O(chunk k P)``, time ``O(n k P)`` plus the Gram ``O(n^2 k P)``. Needs samples to be independent."""

    FULL_BATCH = "full_batch"
    """``torch.func.jacrev`` of the whole-batch function per block: exact when samples interact (BatchNorm in
    train mode); memory ``O(n k P)``."""


DEFAULT_IMPLEMENTATION = Implementation.AUTO
"""The engine's default choice."""


def parse_implementation(value: str | Implementation) -> Implementation:
    """Turn a user value into an :class:`Implementation`.

    Raises:
        ValueError: For an unknown name, listing the valid ones.
    """
    if isinstance(value, Implementation):
        return value
    try:
        return Implementation(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in Implementation)
        raise ValueError(f"`implementation` must be one of {valid}; received {value!r}.") from None
