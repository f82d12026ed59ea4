"""The options of one NTK computation, checked once for both public functions."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import torch

from regimescope.guards import ENGINE_MODES
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation, parse_implementation
from regimescope.ntk.model.output_map import OutputIndices
from regimescope.outputs import OutputFn

Kind = Literal["trace", "full"]
Mode = Literal["eval", "train", "batch_stats"]


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class NtkOptions:
    """Every option of :func:`~regimescope.ntk.engine.empirical_ntk` and :func:`~regimescope.ntk.engine.plan_ntk`
    (documented there), validated when built.

    ``implementation`` is resolved for the mode: a name becomes its :class:`Implementation`, and train mode (where
    examples interact) always uses :attr:`Implementation.FULL_BATCH`.

    Raises:
        ValueError: On an unknown ``kind``, ``mode`` or ``implementation``, a non-positive ``sketch`` or
            ``max_memory``, or an implementation that assumes independent examples in train mode.
    """

    kind: Kind = "trace"
    per_layer: bool = False
    output_fn: OutputFn | None = None
    mode: Mode = "eval"
    dtype: torch.dtype | None = None
    implementation: str | Implementation = DEFAULT_IMPLEMENTATION
    include_frozen: bool = False
    max_memory: int | None = None
    outputs: OutputIndices | None = None
    output_projection: int | None = None
    seed: int = 0
    sketch: int | None = None
    layers: Collection[str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("trace", "full"):
            raise ValueError(f"`kind` must be 'trace' or 'full'; received {self.kind!r}.")
        if self.mode not in ENGINE_MODES:
            raise ValueError(f"`mode` must be one of {', '.join(map(repr, ENGINE_MODES))}; received {self.mode!r}.")
        if self.sketch is not None and not _positive_int(self.sketch):
            raise ValueError(f"`sketch` must be a positive int (dimensions per parameter block) or None; received "
                             f"{self.sketch!r}. Try sketch=4096.")
        if self.max_memory is not None and not _positive_int(self.max_memory):
            raise ValueError(f"`max_memory` must be a positive number of bytes or None; received "
                             f"{self.max_memory!r}. For example max_memory=2 * 2**30 for 2 GiB.")
        implementation = parse_implementation(self.implementation)
        if self.mode == "train" and implementation not in (Implementation.AUTO, Implementation.FULL_BATCH):
            raise ValueError(
                f"implementation={implementation.value!r} assumes independent examples, which train mode does not "
                "give (BatchNorm batch statistics, dropout). Use implementation='auto' or 'full_batch', or mode='eval'."
            )
        if self.mode == "train":
            implementation = Implementation.FULL_BATCH
        object.__setattr__(self, "implementation", implementation)

    @property
    def full(self) -> bool:
        """Whether the full ``(n1, n2, k, k)`` kernel is asked for."""
        return self.kind == "full"
