"""Angular velocity of the kernel between consecutive measurements."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_angle
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record, tag


class KernelVelocity(Indicator):
    """``arccos(1 - S(K_prev, K_t)) / (t - t_prev)``, radians per step.

    The angle is first order in small changes, so its rate does not vanish with the measurement interval
    (``S / dt`` would). A spike marks a kernel jump (a phase of rapid feature learning).

    Tag: ``regimescope/kernel/velocity`` (absent at the first measurement).
    """

    name = "kernel_velocity"
    needs = frozenset({Need.KERNEL})
    reference = Reference.PREVIOUS

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        if reference is not None and current.step > reference.step:
            angle = kernel_angle(reference.kernel, current.kernel)
            record.scalars[tag("kernel", "velocity")] = float(angle) / (current.step - reference.step)
        return record
