"""The interface every pair with a conserved balance offers: layer pairs and attention head pairs alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch

from regimescope.conservation.pairs import Break


class BalancePair(Protocol):
    """A set of hidden units with a per-unit rescaling symmetry, hence a conserved balance ``delta_k``.

    Implemented by :class:`~regimescope.conservation.pairs.LayerPair` (a layer, or a norm layer's affine, and the
    layer reading its units) and :class:`~regimescope.conservation.attention.HeadPair` (query/key or value/output
    projections of attention heads). ``delta_k`` is the rate-weighted squared norm of unit ``k``'s outgoing-side
    rows minus that of its incoming-side rows (:func:`~regimescope.conservation.quantities.unit_deltas`).

    Attributes:
        name: Pair name, used in tags.
        units: Number of units ``k``.
        in_weight: Parameter holding the incoming-side weight rows.
        in_bias: Parameter holding the incoming-side bias, or ``None``.
        out_weight: Parameter holding the outgoing-side weights.
        out_bias: Parameter holding an outgoing-side bias that enters ``delta_k``, or ``None``.
        conserved: Whether ``delta_k`` is conserved under gradient flow.
        reason: Why not (empty when conserved).
        matrix_conserved: Whether the matrix form is conserved.
        breaks: The causes behind ``reason``.
        has_balance: Whether ``delta_k`` can be evaluated at all (``False`` when a parametrization computes one of
            the pair's weights: there is no per-unit rescaling, see :mod:`regimescope.conservation.parameters`).
    """

    name: str
    units: int
    conserved: bool
    reason: str
    matrix_conserved: bool
    breaks: frozenset[Break]

    @property
    def has_balance(self) -> bool: ...  # noqa: D102

    @property
    def in_weight(self) -> str: ...  # noqa: D102

    @property
    def in_bias(self) -> str | None: ...  # noqa: D102

    @property
    def out_weight(self) -> str: ...  # noqa: D102

    @property
    def out_bias(self) -> str | None: ...  # noqa: D102

    @property
    def parameter_names(self) -> tuple[str, ...]: ...  # noqa: D102

    @property
    def matrix_blocks(self) -> int | None: ...  # noqa: D102

    def unit_rows(  # noqa: D102
        self, weights: Mapping[str, torch.Tensor], dtype: torch.dtype | None = ...
    ) -> dict[str, torch.Tensor]: ...
