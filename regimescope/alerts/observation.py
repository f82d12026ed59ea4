"""What alert rules see at one measurement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from regimescope.tags import noise_of
from regimescope.verdict.labeler import Verdict


@dataclass(frozen=True)
class Observation:
    """One measurement as the alert rules see it.

    Attributes:
        step: Global step of the measurement.
        scalars: The record's scalars, ``tag -> value``.
        noise: ``tag -> measurement noise`` (one standard error) of the scalars that have an estimate; see
            :mod:`regimescope.indicators.noise` and the balance indicator's rounding floor.
        verdict: The verdict of this measurement (``None`` without kernel evidence or with non-finite evidence).
    """

    step: int
    scalars: Mapping[str, float]
    noise: Mapping[str, float] = field(default_factory=dict)
    verdict: Verdict | None = None

    def noise_of(self, tag: str) -> float:
        """The noise of ``tag``, ``0`` when it has no estimate."""
        return float(self.noise.get(tag, 0.0))

    @classmethod
    def of(cls, step: int, scalars: Mapping[str, float], verdict: Verdict | None) -> Observation:
        """The observation of a record's scalars, its noise taken from the noise estimates among them."""
        return cls(step=step, scalars=dict(scalars), noise=noise_of(scalars), verdict=verdict)
