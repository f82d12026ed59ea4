"""A sink that keeps every record in memory, for tests and notebooks."""

from __future__ import annotations

import numpy as np

from regimescope.record import Record
from regimescope.sinks.base import Sink


class MemorySink(Sink):
    """Keeps every record it receives, in order, and reads series back by tag.

    Records are stored as given, not copied. A tag that was never written reads back as empty lists,
    so ``sink.texts("regimescope/alerts")`` is simply empty in a run without alerts; :meth:`tags` lists
    what was written.

    Attributes:
        records: The records received, in the order :meth:`write` was called.
    """

    def __init__(self) -> None:
        self.records: list[Record] = []

    def write(self, record: Record) -> None:
        """Append ``record`` to :attr:`records`."""
        self.records.append(record)

    def resume(self, step: int) -> None:
        """Drop the records of steps after ``step``: a resumed run measures them again."""
        self.records = [record for record in self.records if record.step <= step]

    def tags(self) -> list[str]:
        """Every tag written so far, of any kind (scalar, histogram, image, text), sorted."""
        seen: set[str] = set()
        for record in self.records:
            seen.update(record.scalars, record.histograms, record.images, record.texts)
        return sorted(seen)

    def scalars(self, tag: str) -> tuple[list[int], list[float]]:
        """The scalar series of ``tag``.

        Args:
            tag: A scalar tag, e.g. ``"regimescope/kernel/distance_from_init"``.

        Returns:
            ``(steps, values)`` over the records that hold ``tag``, in write order.
        """
        pairs = [(r.step, float(r.scalars[tag])) for r in self.records if tag in r.scalars]
        return [step for step, _ in pairs], [value for _, value in pairs]

    def histograms(self, tag: str) -> tuple[list[int], list[np.ndarray]]:
        """The histogram values of ``tag``: ``(steps, arrays)`` in write order."""
        pairs = [(r.step, r.histograms[tag]) for r in self.records if tag in r.histograms]
        return [step for step, _ in pairs], [values for _, values in pairs]

    def images(self, tag: str) -> tuple[list[int], list[np.ndarray]]:
        """The images of ``tag``: ``(steps, (H, W, 3) uint8 arrays)`` in write order."""
        pairs = [(r.step, r.images[tag]) for r in self.records if tag in r.images]
        return [step for step, _ in pairs], [image for _, image in pairs]

    def texts(self, tag: str) -> tuple[list[int], list[str]]:
        """The texts of ``tag`` (e.g. ``"regimescope/alerts"``): ``(steps, texts)`` in write order."""
        pairs = [(r.step, r.texts[tag]) for r in self.records if tag in r.texts]
        return [step for step, _ in pairs], [text for _, text in pairs]
