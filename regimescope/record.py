"""The unit of output of one measurement: a :class:`Record` of tagged values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Record:
    """Everything one measurement produced, keyed by TensorBoard tag.

    Attributes:
        step: Global training step of the measurement.
        scalars: ``tag -> float``.
        histograms: ``tag -> 1-D numpy array`` of values (e.g. per-neuron conserved quantities).
        images: ``tag -> (H, W, 3) uint8 array``.
        texts: ``tag -> markdown text``.
    """

    step: int
    scalars: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Record) -> None:
        """Add every entry of ``other`` (same step) into this record."""
        self.scalars.update(other.scalars)
        self.histograms.update(other.histograms)
        self.images.update(other.images)
        self.texts.update(other.texts)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (histograms as lists, images left out: they are derived views)."""
        return {
            "step": self.step,
            "scalars": dict(self.scalars),
            "histograms": {k: np.asarray(v, dtype=float).tolist() for k, v in self.histograms.items()},
            "texts": dict(self.texts),
        }

    @classmethod
    def from_json(cls, data: dict) -> Record:
        """Inverse of :meth:`to_json` (images are not stored)."""
        return cls(
            step=int(data["step"]),
            scalars={k: float(v) for k, v in data.get("scalars", {}).items()},
            histograms={k: np.asarray(v, dtype=float) for k, v in data.get("histograms", {}).items()},
            texts=dict(data.get("texts", {})),
        )
