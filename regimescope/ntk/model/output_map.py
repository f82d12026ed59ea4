"""Which outputs the kernel is taken of: all of them, an explicit subset, or a seeded random projection.

For models with many outputs (a language model's ``T x vocabulary`` logits) the trace kernel
``K(x, x') = sum_o <J_o(x), J_o(x')>`` costs one backward pass per output. A random projection ``R`` of shape
``(m, k)`` with independent Rademacher entries ``+-1/sqrt(m)`` has ``E[R^T R] = I_k``, so the trace kernel of the
projected outputs ``R f`` is an unbiased estimate of the trace kernel of ``f`` at the cost of ``m`` outputs:

    E[ sum_r <(R J)_r(x), (R J)_r(x')> ] = sum_o <J_o(x), J_o(x')>,
    Var = (1/m) sum_{o < q} (K_oq(x, x') + K_qo(x, x'))^2  <=  (2/m) sum_{o != q} K_oq(x, x')^2,

with ``K_oq(x, x') = <J_o(x), J_q(x')>`` (the diagonal of ``R^T R`` is exactly 1 for Rademacher entries),

so the error is small when the per-output kernels ``K_oq`` off the diagonal are small next to the trace.

The estimate reports its own noise: each row ``r`` of ``R`` gives an independent unbiased estimate
``z_r = m K_rr(x, x')`` of the trace kernel (``K_rr`` the kernel of combination ``r``) and the trace estimate is
their mean, so :func:`projection_estimate` turns the ``kind="full"`` kernel of the combinations into the estimate
and its standard error from the spread of the ``z_r``.
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


def projection_estimate(full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The trace-kernel estimate of an ``output_projection`` kernel and its standard error, entry by entry.

    With ``full`` the ``(n1, n2, m, m)`` kernel of the ``m`` projected outputs (``empirical_ntk(...,
    kind="full", output_projection=m)``), each combination ``r`` gives the independent unbiased estimate
    ``z_r = m full[..., r, r]`` of the trace kernel of all outputs, and

        estimate       T  = mean_r z_r = sum_r full[i, j, r, r]     (the kind="trace" result),
        standard error SE = sqrt( sum_r (z_r - T)^2 / (m (m - 1)) ),

    ``SE^2`` an unbiased estimate of the variance of ``T`` (module docstring).

    Args:
        full: ``(n1, n2, m, m)`` with ``m >= 2``.

    Returns:
        ``(T, SE)``, both ``(n1, n2)``.

    Raises:
        ValueError: For a tensor that is not a full kernel of at least two combinations.
    """
    if full.dim() != 4 or full.shape[2] != full.shape[3] or full.shape[2] < 2:
        raise ValueError(
            "`full` must be the (n1, n2, m, m) kernel of m >= 2 projected outputs, from empirical_ntk(..., "
            f"kind='full', output_projection=m); received shape {tuple(full.shape)}."
        )
    m = full.shape[2]
    rows = m * torch.diagonal(full, dim1=2, dim2=3)
    estimate = rows.mean(-1)
    spread = (rows - estimate.unsqueeze(-1)).square().sum(-1)
    return estimate, (spread / (m * (m - 1))).sqrt()
