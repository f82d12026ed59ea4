"""Kernel distance from initialisation, ``S(K_0, K_t)``."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_distance
from regimescope.indicators.base import Context, Direction, Output, Reference
from regimescope.indicators.noise import NoisyIndicator, distance
from regimescope.record import Record
from regimescope.tags import KERNEL_DISTANCE


class KernelDistance(NoisyIndicator):
    """``S(K_0, K_t) = 1 - <K_0, K_t>_F / (|K_0|_F |K_t|_F)`` on the probe, with its probe-half noise.

    Scale-blind rotation of the NTK since step 0: ~0 in the lazy regime (theory: ``S ~ delta^-4`` for the
    minimal model), towards 1 when features are learnt. Quadratic in small changes. The verdict's "direction"
    evidence.

    Tag: ``regimescope/kernel/distance_from_init``.
    """

    name = "kernel_distance"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT
    outputs = (Output(KERNEL_DISTANCE, Direction.HIGHER, evidence="direction", noisy=True),)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        value = float(kernel_distance(reference.kernel, current.kernel))
        record = Record(current.step, scalars={KERNEL_DISTANCE: value})
        halves = (reference.kernel_halves, current.kernel_halves)
        self.add_noise(record, KERNEL_DISTANCE, distance, reference.kernel, current.kernel, halves=halves)
        return record
