"""The ways the engine can compute an NTK block, selected by name like neural-tangents' ``NtkImplementation``."""

from __future__ import annotations

import enum


class Implementation(enum.Enum):
    """How the engine computes each parameter block's kernel. All members give the same kernel (up to rounding).

    Costs are for a block with ``P`` parameters, ``n`` examples, ``k`` outputs, and for a layer with ``T``
    positions, input tokens of width ``D`` and outputs of width ``C``; ``k'`` is ``k`` for the trace kernel and
    ``k^2`` for the full one. The layer rules (``nn.Linear``, Hugging Face's ``Conv1D``, ``nn.Conv1d/2d``,
    ``nn.Embedding``, norm layers' affine parameters; :mod:`regimescope.ntk.rules`) need one forward pass and ``k``
    backward passes (batched) for the whole model.
    """

    AUTO = "auto"
    """Default. Eval mode: every block covered by a layer rule in the cheapest exact form by the cost formulas
    of :data:`regimescope.ntk.planning.costs.FORM_COSTS` (Gram-Hadamard form or per-sample gradients from the layer
    data), and :attr:`PER_SAMPLE` for every other block. Train mode: :attr:`FULL_BATCH`."""

    FACTORED = "factored"
    """Layer rules, in the Gram-Hadamard form wherever the rule has one (exclusive linear, convolution and
    embedding layers): ``sum_{t,s} <g_it, g_js> <a_it, a_js>``, time ``O(n^2 T^2 (D + k' C))``, memory
    ``O(n^2 T^2)`` per chunk, no per-sample gradient; per-sample gradients for norm layers and tied
    parameters; :attr:`PER_SAMPLE` elsewhere."""

    LAYER_PER_SAMPLE = "layer_per_sample"
    """Layer rules, always through per-sample gradients formed from the layer data (``sum_t g_it a_it^T``):
    time ``O(n k T C D + n^2 k' P)``, memory ``O(chunk k P)``; :attr:`PER_SAMPLE` elsewhere."""

    PER_SAMPLE = "per_sample"
    """``torch.func.vmap(jacrev)`` per-sample Jacobians of every block, chunked over examples and outputs:
    memory ``O(chunk k P)``, time ``n k`` single-example backward passes plus the Gram ``O(n^2 k' P)``. Needs
    examples to be independent (eval mode)."""

    FULL_BATCH = "full_batch"
    """``torch.func.jacrev`` of the whole-batch function: exact when examples interact (BatchNorm in train
    mode); memory ``O(chunk k P + n * activations * chunk k)``."""


DEFAULT_IMPLEMENTATION = Implementation.AUTO
"""The engine's default choice."""

RULE_IMPLEMENTATIONS = (Implementation.AUTO, Implementation.FACTORED, Implementation.LAYER_PER_SAMPLE)
"""The implementations that use the layer rules (in eval mode)."""


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
