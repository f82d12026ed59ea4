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
from dataclasses import dataclass

GATHER_COST = 4
"""Multiply-add equivalents per sketched scalar of :class:`~regimescope.ntk.execution.sketch.CountSketch` (sign,
gather and fold are memory-bound), for cost estimates."""


class Form(enum.Enum):
    """How one block's kernel is computed."""

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


def form_flops(form: Form, g: Geometry, sketch_dim: int | None) -> int:
    """Multiply-adds of ``form`` for the block (see the module table)."""
    t1, t2 = g.tokens
    n1, n2 = g.n
    formation = g.k * (n1 * g.formation[0] + (0 if g.symmetric else n2 * g.formation[1]))
    if form is Form.GRAM:
        return g.pairs * t1 * t2 * (g.record_width + g.k_prime * g.grad_width)
    if form is Form.PER_SAMPLE:
        return formation + g.pairs * g.k_prime * g.params
    if form is Form.SKETCH:
        return formation + GATHER_COST * g.formed * g.params + g.pairs * g.k_prime * (sketch_dim or g.params)
    raise ValueError(f"no cost formula for {form}")


def form_bytes(form: Form, g: Geometry, chunk: int, outputs: int, sketch_dim: int | None) -> int:
    """Working bytes of ``form`` with ``chunk`` examples and ``outputs`` outputs per chunk (module table)."""
    t1, t2 = g.tokens
    b = g.itemsize
    if form is Form.GRAM:
        square = chunk * chunk * t1 * t2
        summed = chunk * chunk * outputs * outputs if g.full and t1 * t2 > 1 else 0
        grams = square * (outputs * outputs + 1 if g.full else 2) + summed
        return b * (grams + chunk * (t1 + t2) * outputs * g.grad_width)
    if form is Form.PER_SAMPLE:
        return b * 4 * chunk * outputs * g.params
    if form is Form.SKETCH:
        m = sketch_dim or g.params
        return b * (3 * chunk * outputs * (-(-g.params // m) * m) + (g.n[0] + g.n[1]) * g.k * m)
    raise ValueError(f"no memory formula for {form}")
