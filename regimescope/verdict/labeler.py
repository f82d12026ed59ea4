"""From scores to labels, with hysteresis so that noise around a threshold does not flip the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from regimescope.tags import LABELS, LAZY, RICH, TRANSITIONAL

__all__ = ["LABELS", "LAZY_BELOW", "MARGIN", "RICH_ABOVE", "Verdict", "next_label", "raw_label"]


LAZY_BELOW = 0.35
"""Scores below this are lazy."""
RICH_ABOVE = 0.65
"""Scores above this are rich."""
MARGIN = 0.05
"""Hysteresis: a label is left only when the score passes its boundary by this much."""


@dataclass
class Verdict:
    """The regime at one measurement.

    Attributes:
        step: Global step.
        score: Richness score in ``[0, 1]``.
        label: ``"lazy"``, ``"transitional"`` or ``"rich"``.
        evidence: The evidence terms the score was built from.
    """

    step: int
    score: float
    label: str
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def label_index(self) -> int:
        """0 lazy, 1 transitional, 2 rich."""
        return LABELS.index(self.label)


def raw_label(score: float) -> str:
    """The label of a score without hysteresis."""
    if score < LAZY_BELOW:
        return LAZY
    if score > RICH_ABOVE:
        return RICH
    return TRANSITIONAL


def next_label(current: str | None, score: float, margin: float = MARGIN) -> str:
    """The label after observing ``score`` when the label is ``current``.

    The first label is :func:`raw_label`. Afterwards the boundaries of the current label are widened by
    ``margin``: a lazy run becomes transitional only above ``LAZY_BELOW + margin``, a rich run becomes
    transitional only below ``RICH_ABOVE - margin``, and a transitional run leaves only below
    ``LAZY_BELOW - margin`` or above ``RICH_ABOVE + margin``.
    """
    if current is None:
        return raw_label(score)
    if current == LAZY:
        return LAZY if score <= LAZY_BELOW + margin else raw_label(score)
    if current == RICH:
        return RICH if score >= RICH_ABOVE - margin else raw_label(score)
    if score < LAZY_BELOW - margin:
        return LAZY
    if score > RICH_ABOVE + margin:
        return RICH
    return TRANSITIONAL
