"""A low-rate picture of the probe NTK."""

from __future__ import annotations

from typing import Any

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.image import heatmap_rgb
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import KERNEL_HEATMAP


class KernelHeatmap(Indicator):
    """An image of ``K_t / max|K_t|`` every ``every``-th measurement (images are heavy in event files).

    Block structure appearing in the heatmap (examples of a class coupling) is the visual sign of rich learning.

    Tag: ``regimescope/kernel/heatmap``.

    Args:
        every: Emit an image at every ``every``-th measurement (the first one included).
    """

    name = "kernel_heatmap"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE
    outputs = (Output(KERNEL_HEATMAP),)

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise ValueError(f"`every` must be a positive number of measurements; received {every}.")
        self.every = every
        self._count = 0

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        if self._count % self.every == 0:
            record.images[KERNEL_HEATMAP] = heatmap_rgb(current.kernel.double().numpy())
        self._count += 1
        return record

    def state_dict(self) -> dict[str, Any]:
        """How many measurements were seen (so a resumed run emits images at the same measurements)."""
        return {"count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self._count = int(state.get("count", 0))
