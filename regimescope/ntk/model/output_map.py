"""Which outputs the kernel is taken of: all of them, an explicit subset, or a seeded random projection.

For models with many outputs (a language model's ``T x vocabulary`` logits) the trace kernel
``K(x, x') = sum_o <J_o(x), J_o(x')>`` costs one backward pass per output. A random projection ``R`` of shape
``(m, k)`` with independent Rademacher entries ``+-1/sqrt(m)`` has ``E[R^T R] = I_k``, so the trace kernel of the
projected outputs ``R f`` is an unbiased estimate of the trace kernel of ``f`` at the cost of ``m`` outputs:

    E[ sum_r <(R J)_r(x), (R J)_r(x')> ] = sum_o <J_o(x), J_o(x')>,
    Var = (1/m) sum_{o < q} (K_oq(x, x') + K_qo(x, x'))^2  <=  (2/m) sum_{o != q} K_oq(x, x')^2,

with ``K_oq(x, x') = <J_o(x), J_q(x')>`` (the diagonal of ``R^T R`` is exactly 1 for Rademacher entries),

so the error is small when the per-output kernels ``K_oq`` off the diagonal are small next to the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

OutputIndices = Sequence[int] | torch.Tensor | slice


@dataclass
class OutputMap:
    """Maps the flattened ``(n, k)`` outputs to the ``(n, k')`` outputs whose kernel is computed.

    Attributes:
        outputs: Indices (or a slice) into the ``k`` flattened outputs, applied first; ``None`` keeps all.
        projection: Number ``m`` of seeded random combinations of the (selected) outputs; ``None`` for none.
        seed: Seed of the projection.
    """

    outputs: OutputIndices | None = None
    projection: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._matrix: torch.Tensor | None = None
        if self.projection is not None and (isinstance(self.projection, bool) or not isinstance(self.projection, int)
                                            or self.projection < 1):
            raise ValueError(
                f"`output_projection` must be a positive int (the number of random output combinations); received "
                f"{self.projection!r}. Use e.g. output_projection=16, or None for the exact kernel of every output."
            )
        if self.outputs is not None and not isinstance(self.outputs, slice):
            index = torch.as_tensor(self.outputs)
            if index.dim() != 1 or index.numel() == 0 or index.is_floating_point():
                raise ValueError(
                    f"`outputs` must be a non-empty 1-d sequence of integer indices into the flattened outputs, or a "
                    f"slice; received {self.outputs!r}."
                )

    @property
    def identity(self) -> bool:
        """Whether the map keeps the outputs as they are."""
        return self.outputs is None and self.projection is None

    def _select(self, flat: torch.Tensor) -> torch.Tensor:
        if self.outputs is None:
            return flat
        if isinstance(self.outputs, slice):
            return flat[:, self.outputs]
        index = torch.as_tensor(self.outputs, device=flat.device)
        k = flat.shape[1]
        if int(index.min()) < -k or int(index.max()) >= k:
            raise ValueError(
                f"`outputs` holds indices in [{int(index.min())}, {int(index.max())}] but the model has k={k} "
                f"(flattened) outputs; pass indices in [0, {k})."
            )
        return flat[:, index]

    def matrix(self, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The ``(m, k)`` projection (Rademacher ``+-1/sqrt(m)``), drawn once from ``seed`` on the CPU."""
        if self._matrix is None or self._matrix.shape[1] != k:
            generator = torch.Generator().manual_seed(self.seed)
            signs = torch.randint(0, 2, (self.projection, k), generator=generator, dtype=torch.int8)
            self._matrix = (2.0 * signs.to(torch.float64) - 1.0) / self.projection**0.5
        return self._matrix.to(dtype=dtype, device=device)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """``(n, k)`` -> ``(n, k')``."""
        selected = self._select(flat)
        if self.projection is None:
            return selected
        return selected @ self.matrix(selected.shape[1], selected.dtype, selected.device).T
