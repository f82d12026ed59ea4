"""Kernel distance from initialisation, ``S(K_0, K_t)``."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_distance
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record, tag


class KernelDistance(Indicator):
    """``S(K_0, K_t) = 1 - <K_0, K_t>_F / (|K_0|_F |K_t|_F)`` on the probe.

    Scale-blind rotation of the NTK since step 0: ~0 in the lazy regime (theory: ``S ~ delta^-4`` for the
    minimal model), towards 1 when features are learnt. Quadratic in small changes.

    Tag: ``regimescope/kernel/distance_from_init``.
    """

    name = "kernel_distance"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        value = kernel_distance(reference.kernel, current.kernel)
        return Record(current.step, scalars={tag("kernel", "distance_from_init"): float(value)})
