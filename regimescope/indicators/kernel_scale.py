"""How much the kernel grew or changed in size since initialisation."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import norm_ratio, relative_change
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record, tag


class KernelScale(Indicator):
    """Relative change ``|K_t - K_0|_F / |K_0|_F`` and norm ratio ``|K_t|_F / |K_0|_F``.

    The scale-sensitive complements of the kernel distance: rich learning from small initialisation grows the
    kernel by orders of magnitude (relative change >> 1) while its direction moves moderately; lazy training
    keeps both near their initial values (0 and 1).

    Tags: ``regimescope/kernel/relative_change``, ``regimescope/kernel/norm_ratio``.
    """

    name = "kernel_scale"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        k_t, k_0 = current.kernel, reference.kernel
        return Record(
            current.step,
            scalars={
                tag("kernel", "relative_change"): float(relative_change(k_t, k_0)),
                tag("kernel", "norm_ratio"): float(norm_ratio(k_t, k_0)),
            },
        )
