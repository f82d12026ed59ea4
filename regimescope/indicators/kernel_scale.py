"""How much the kernel grew or changed in size since initialisation."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import norm_ratio, relative_change
from regimescope.indicators.base import Context, Direction, Output, Reference
from regimescope.indicators.noise import NoisyIndicator, change
from regimescope.record import Record
from regimescope.tags import KERNEL_NORM_RATIO, KERNEL_RELATIVE_CHANGE


class KernelScale(NoisyIndicator):
    """Relative change ``|K_t - K_0|_F / |K_0|_F`` (with its probe-half noise) and norm ratio ``|K_t|_F / |K_0|_F``.

    The scale-sensitive complements of the kernel distance: rich learning from small initialisation grows the
    kernel by orders of magnitude (relative change >> 1) while its direction moves moderately; lazy training
    keeps both near their initial values (0 and 1). The relative change is the verdict's "scale" evidence.

    Tags: ``regimescope/kernel/relative_change``, ``regimescope/kernel/norm_ratio``.
    """

    name = "kernel_scale"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT
    outputs = (
        Output(KERNEL_RELATIVE_CHANGE, Direction.HIGHER, evidence="scale", noisy=True),
        Output(KERNEL_NORM_RATIO),
    )

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        k_t, k_0 = current.kernel, reference.kernel
        record = Record(
            current.step,
            scalars={
                KERNEL_RELATIVE_CHANGE: float(relative_change(k_t, k_0)),
                KERNEL_NORM_RATIO: float(norm_ratio(k_t, k_0)),
            },
        )
        halves = (reference.kernel_halves, current.kernel_halves)
        self.add_noise(record, KERNEL_RELATIVE_CHANGE, change, k_0, k_t, halves=halves)
        return record
