"""Assembling kernels from row chunks: pairs of (examples x outputs) chunks, upper triangle only when symmetric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

RowsFn = Callable[[slice, slice], Any]
"""``(examples, outputs) -> rows``: whatever ``pair`` consumes (Jacobian rows, layer data)."""
PairFn = Callable[[Any, Any, bool], dict[str, torch.Tensor]]
"""``(rows_a, rows_b, full) -> {block: piece}``: ``(|Sa|, |Sb|)`` (trace) or ``(|Sa|, |Sb|, |Oa|, |Ob|)`` (full)."""


class KernelSink:
    """Where kernel pieces accumulate: one tensor per block (``per_layer``) or a single sum.

    Args:
        names: Block names, in the order of the result.
        shape: ``(n1, n2)`` or ``(n1, n2, k, k)``.
        per_layer: Keep blocks apart.
        dtype: Compute dtype.
        device: Compute device.
    """

    def __init__(self, names: list[str], shape: tuple[int, ...], per_layer: bool, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.names, self.shape, self.per_layer = names, shape, per_layer
        self.dtype, self.device = dtype, device
        self._tensors: dict[str, torch.Tensor] = {}

    def _target(self, name: str) -> torch.Tensor:
        key = name if self.per_layer else ""
        if key not in self._tensors:
            self._tensors[key] = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return self._tensors[key]

    def add(self, name: str, piece: torch.Tensor, index: tuple[slice, ...]) -> None:
        """``K_name[index] += piece``."""
        self._target(name)[index] += piece

    def result(self) -> torch.Tensor | dict[str, torch.Tensor]:
        """The kernel, or ``{block: kernel}`` in block order (blocks never touched are zero)."""
        if self.per_layer:
            return {name: self._target(name) for name in self.names}
        return self._target("")


@dataclass(frozen=True)
class Layout:
    """How one pair of example blocks is cut into chunks and placed in the kernel.

    Attributes:
        n1: Examples on the row side.
        n2: Examples on the column side.
        k: Outputs.
        full: Full kernel (all output pairs) instead of the trace.
        symmetric: Rows and columns are the same examples: only the upper triangle of chunk pairs is computed.
        mirror: Also write each piece transposed at the mirrored place (an off-diagonal block of a symmetric
            kernel).
        offset1: Kernel row of the first row-side example.
        offset2: Kernel column of the first column-side example.
    """

    n1: int
    n2: int
    k: int
    full: bool
    symmetric: bool
    mirror: bool = False
    offset1: int = 0
    offset2: int = 0


def _chunks(total: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, total)) for s in range(0, total, max(1, size))]


def _shift(s: slice, offset: int) -> slice:
    return slice(s.start + offset, s.stop + offset)


def _place(sink: KernelSink, layout: Layout, pieces: dict[str, torch.Tensor], sa: slice, sb: slice, oa: slice,
           ob: slice, transpose_too: bool) -> None:
    ra, rb = _shift(sa, layout.offset1), _shift(sb, layout.offset2)
    for name, piece in pieces.items():
        if layout.full:
            sink.add(name, piece, (ra, rb, oa, ob))
            if transpose_too:
                sink.add(name, piece.permute(1, 0, 3, 2), (rb, ra, ob, oa))
        else:
            sink.add(name, piece, (ra, rb))
            if transpose_too:
                sink.add(name, piece.T, (rb, ra))


def assemble(
    sink: KernelSink,
    layout: Layout,
    sample_chunk: int,
    output_chunk: int,
    rows_a: RowsFn,
    rows_b: RowsFn,
    pair: PairFn,
) -> int:
    """Add the kernel of one pair of example blocks into ``sink``, chunk pair by chunk pair.

    Trace kernels pair chunks with the same outputs; full kernels pair every (examples, outputs) chunk with every
    other. With ``layout.symmetric`` only pairs on or above the diagonal are computed and mirrored.

    Returns:
        The number of ``rows`` calls made (for pass counting).
    """
    samples_a = _chunks(layout.n1, sample_chunk)
    samples_b = _chunks(layout.n2, sample_chunk)
    outputs = _chunks(layout.k, output_chunk)
    calls = 0
    if layout.full:
        units_a = [(s, o) for s in samples_a for o in outputs]
        units_b = [(s, o) for s in samples_b for o in outputs]
        pairs = [(ua, ub) for ua in range(len(units_a)) for ub in range(len(units_b))
                 if not (layout.symmetric and ub < ua)]
    else:
        units_a = [(s, o) for o in outputs for s in samples_a]
        units_b = [(s, o) for o in outputs for s in samples_b]
        per = len(samples_a)
        pairs = [(ua, ub) for ua in range(len(units_a)) for ub in range(len(units_b))
                 if ua // per == ub // len(samples_b) and not (layout.symmetric and ub < ua)]
    current: tuple[int, Any] | None = None
    for ua, ub in pairs:
        if current is None or current[0] != ua:
            current = None  # released before the next rows are formed: two sets of rows alive at most
            current = (ua, rows_a(*units_a[ua]))
            calls += 1
        if layout.symmetric and ua == ub:
            rb = current[1]
        else:
            rb = rows_b(*units_b[ub])
            calls += 1
        (sa, oa), (sb, ob) = units_a[ua], units_b[ub]
        pieces = pair(current[1], rb, layout.full)
        del rb
        transpose_too = layout.mirror or (layout.symmetric and ua != ub)
        _place(sink, layout, pieces, sa, sb, oa, ob, transpose_too)
        del pieces
    return calls
