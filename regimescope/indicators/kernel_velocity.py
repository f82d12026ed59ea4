"""Angular velocity of the kernel between consecutive measurements."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_angle
from regimescope.indicators.base import Context, Direction, Output, Reference
from regimescope.indicators.noise import NoisyIndicator, angle
from regimescope.record import Record
from regimescope.tags import KERNEL_VELOCITY


class KernelVelocity(NoisyIndicator):
    """``arccos(1 - S(K_prev, K_t)) / (t - t_prev)``, radians per step, with its probe-half noise.

    The angle is first order in small changes, so its rate does not vanish with the measurement interval
    (``S / dt`` would). A spike marks a kernel jump (a phase of rapid feature learning).

    Tag: ``regimescope/kernel/velocity`` (absent at the first measurement).
    """

    name = "kernel_velocity"
    needs = frozenset({Need.KERNEL})
    reference = Reference.PREVIOUS
    outputs = (Output(KERNEL_VELOCITY, Direction.HIGHER, noisy=True),)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        if reference is not None and current.step > reference.step:
            interval = current.step - reference.step
            record.scalars[KERNEL_VELOCITY] = float(kernel_angle(reference.kernel, current.kernel)) / interval
            halves = (reference.kernel_halves, current.kernel_halves)
            self.add_noise(
                record, KERNEL_VELOCITY, angle, reference.kernel, current.kernel, per=interval, halves=halves
            )
        return record
