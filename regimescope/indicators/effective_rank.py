"""Effective rank of the probe NTK."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.effective_rank import effective_rank
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import KERNEL_EFFECTIVE_RANK


class KernelEffectiveRank(Indicator):
    """``exp(-sum_i p_i ln p_i)``, ``p_i`` the normalised singular values of ``K_t``.

    Rich learning from small initialisation drives it towards the task's rank; lazy training keeps it fixed.

    Tag: ``regimescope/kernel/effective_rank``.
    """

    name = "kernel_effective_rank"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE
    outputs = (Output(KERNEL_EFFECTIVE_RANK, Direction.LOWER),)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        return Record(current.step, scalars={KERNEL_EFFECTIVE_RANK: float(effective_rank(current.kernel))})
