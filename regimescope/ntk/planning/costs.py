"""The cost rule: multiply-adds and working memory of each exact form of a block, from the shapes alone.

Notation: ``n1, n2`` examples, ``k`` outputs (``k' = k`` for the trace kernel, ``k^2`` for the full one), a layer
with ``T1, T2`` positions per example (tokens of a sequence, patches of a convolution), input tokens of width ``D``
and output gradients of width ``C``, ``P`` parameters; ``f`` the multiply-adds of one example's per-sample
gradient for one output (``T C D`` for linear and convolution layers); ``pairs = n1 n2`` (about half for a
kernel of ``x1`` with itself).

=========== ========================================================== ==========================================
form        multiply-adds                                              working memory (chunks ``c`` x ``q``)
=========== ========================================================== ==========================================
gram        ``pairs T1 T2 (D + k' C)``                                 ``2 c^2 T1 T2`` (full: ``(q^2 + 1) c^2 T1 T2``
                                                                       ``+ c^2 q^2`` when ``T1 T2 > 1``)
per_sample  ``k (n1 + n2) f + pairs k' P``                             ``4 c q P``
sketch      ``k (n1 + n2) (f + 4 P) + pairs k' m``                     ``3 c q P + (n1 + n2) k m``
=========== ========================================================== ==========================================

So for a convolution the Gram form wins when ``T1 T2 (D + k' C) < k' C D`` roughly, i.e. for few positions
(late layers, small feature maps) and the per-sample form wins for many positions (early layers: ``T`` in the
thousands); for a linear layer on ``(n, d)`` inputs (``T = 1``) the Gram form always wins. The engine evaluates
these formulas per layer and picks the smallest (``implementation="auto"``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

GATHER_COST = 4
"""Multiply-add equivalents per sketched scalar of :class:`~regimescope.ntk.execution.sketch.CountSketch` (sign,
gather and fold are memory-bound), for cost estimates."""


class Form(str, enum.Enum):
    """How one block's kernel is computed (a ``str`` enum: ``plan.blocks[i].form == "gram"`` holds)."""

    GRAM = "gram"
    """Gram-Hadamard form of a layer rule: no per-sample gradient."""
    PER_SAMPLE = "per_sample"
    """Per-sample gradients formed from the layer data, then their Gram."""
    SKETCH = "sketch"
    """Per-sample gradients from the layer data, CountSketched to ``m`` dimensions, then their Gram."""
    JACOBIAN = "jacobian"
    """Generic ``vmap(jacrev)`` per-sample Jacobian rows (optionally sketched)."""
    FULL_BATCH = "full_batch"
    """Generic rows of the whole-batch Jacobian (optionally sketched)."""

    @property
    def layer_per_sample(self) -> bool:
        """Whether the form builds per-sample gradients from the layer data (every layer form but the Gram form)."""
        return self in (Form.PER_SAMPLE, Form.SKETCH)


@dataclass(frozen=True)
class Geometry:
    """The sizes one block's costs depend on.

    Attributes:
        n: Examples of the two sets.
        k: Outputs.
        full: Full kernel.
        symmetric: Kernel of one set with itself.
        params: ``P``.
        tokens: ``T`` of the owning layer in each set.
        record_width: ``D``.
        grad_width: ``C``.
        formation: ``f`` for each set (summed over the block's uses).
        itemsize: Bytes per scalar.
    """

    n: tuple[int, int]
    k: int
    full: bool
    symmetric: bool
    params: int
    tokens: tuple[int, int] = (1, 1)
    record_width: int = 0
    grad_width: int = 0
    formation: tuple[int, int] = (0, 0)
    itemsize: int = 4

    @property
    def pairs(self) -> int:
        """Example pairs computed."""
        n1, n2 = self.n
        return n1 * (n1 + 1) // 2 if self.symmetric else n1 * n2

    @property
    def k_prime(self) -> int:
        """``k`` (trace) or ``k^2`` (full)."""
        return self.k * self.k if self.full else self.k

    @property
    def formed(self) -> int:
        """Per-sample gradient rows formed: ``k (n1 + n2)`` (``k n1`` when symmetric)."""
        n1, n2 = self.n
        return self.k * (n1 if self.symmetric else n1 + n2)

    @property
    def formation_flops(self) -> int:
        """Multiply-adds forming every per-sample gradient row: ``k (n1 f1 + n2 f2)`` (``k n1 f1`` when symmetric)."""
        n1, n2 = self.n
        return self.k * (n1 * self.formation[0] + (0 if self.symmetric else n2 * self.formation[1]))


def _gram_flops(g: Geometry, sketch_dim: int | None) -> int:
    t1, t2 = g.tokens
    return g.pairs * t1 * t2 * (g.record_width + g.k_prime * g.grad_width)


def _per_sample_flops(g: Geometry, sketch_dim: int | None) -> int:
    return g.formation_flops + g.pairs * g.k_prime * g.params


def _sketch_flops(g: Geometry, sketch_dim: int | None) -> int:
    return g.formation_flops + GATHER_COST * g.formed * g.params + g.pairs * g.k_prime * (sketch_dim or g.params)


def _gram_bytes(g: Geometry, chunk: int, outputs: int, sketch_dim: int | None) -> int:
    t1, t2 = g.tokens
    square = chunk * chunk * t1 * t2
    summed = chunk * chunk * outputs * outputs if g.full and t1 * t2 > 1 else 0
    grams = square * (outputs * outputs + 1 if g.full else 2) + summed
    return g.itemsize * (grams + chunk * (t1 + t2) * outputs * g.grad_width)


def _per_sample_bytes(g: Geometry, chunk: int, outputs: int, sketch_dim: int | None) -> int:
    return g.itemsize * 4 * chunk * outputs * g.params


def _sketch_bytes(g: Geometry, chunk: int, outputs: int, sketch_dim: int | None) -> int:
    m = sketch_dim or g.params
    return g.itemsize * (3 * chunk * outputs * (-(-g.params // m) * m) + (g.n[0] + g.n[1]) * g.k * m)


@dataclass(frozen=True)
class FormCost:
    """The cost formulas of one layer form (a row of the module table).

    Attributes:
        flops: ``(geometry, sketch dimension) -> multiply-adds`` of the whole block.
        working_bytes: ``(geometry, examples per chunk, outputs per chunk, sketch dimension) -> bytes``.
    """

    flops: Callable[[Geometry, int | None], int]
    working_bytes: Callable[[Geometry, int, int, int | None], int]


FORM_COSTS: dict[Form, FormCost] = {
    Form.GRAM: FormCost(_gram_flops, _gram_bytes),
    Form.PER_SAMPLE: FormCost(_per_sample_flops, _per_sample_bytes),
    Form.SKETCH: FormCost(_sketch_flops, _sketch_bytes),
}
"""The cost formulas of the layer forms, by form. The generic forms are planned from the rows' sizes instead
(:mod:`regimescope.ntk.planning.plan`)."""


def _costs(form: Form) -> FormCost:
    if form not in FORM_COSTS:
        raise ValueError(f"no cost formula for {form}; the layer forms are {[f.value for f in FORM_COSTS]}.")
    return FORM_COSTS[form]


def form_flops(form: Form, g: Geometry, sketch_dim: int | None) -> int:
    """Multiply-adds of the layer form ``form`` for the block (see the module table)."""
    return _costs(form).flops(g, sketch_dim)


def form_bytes(form: Form, g: Geometry, chunk: int, outputs: int, sketch_dim: int | None) -> int:
    """Working bytes of the layer form ``form`` with ``chunk`` examples and ``outputs`` outputs per chunk."""
    return _costs(form).working_bytes(g, chunk, outputs, sketch_dim)
