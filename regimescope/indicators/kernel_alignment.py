"""Centred kernel-target alignment on the probe."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.alignment import kernel_alignment
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import KERNEL_TARGET_ALIGNMENT


class KernelTargetAlignment(Indicator):
    """``<H K H, Y_c Y_c^T>_F / (|H K H|_F |Y_c Y_c^T|_F)`` with the probe's targets.

    ``Y`` is read in the probe's target layout (class labels, a target matrix, or one class per output position
    for a language model: then ``(Y Y^T)[i, j]`` counts the positions where two examples' next tokens agree; see
    :func:`~regimescope.functional.alignment.kernel_alignment`).

    Rises while the kernel learns the task (rich training; "silent alignment" from small initialisation, often
    before the loss moves), flat in lazy training. Needs probe targets.

    Tag: ``regimescope/kernel/target_alignment``.
    """

    name = "kernel_target_alignment"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE
    outputs = (Output(KERNEL_TARGET_ALIGNMENT, Direction.HIGHER),)

    def applicable(self, context: Context) -> bool:
        return context.probe.targets is not None

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        probe = context.probe
        value = kernel_alignment(current.kernel, probe.targets.cpu(), layout=probe.target_layout)
        return Record(current.step, scalars={KERNEL_TARGET_ALIGNMENT: float(value)})
