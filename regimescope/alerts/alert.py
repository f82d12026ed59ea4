"""An alert: something about the regime changed and the user should know."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    """One event, with what moved, by how much, where, and what it usually means.

    Attributes:
        step: Global step at which it fired.
        kind: Rule name, e.g. ``"regime_shift"``, ``"kernel_jump"``, ``"conservation_broken"``, ``"non_finite"``.
        message: One line for people: what moved, by how much, at which step, in which layer, what it means.
        tag: The TensorBoard tag of the indicator that moved (``None`` for the verdict's label).
        layer: The layer (or layer pair) it moved in; ``None`` for a whole-model quantity.
        value: The indicator's value when the rule fired.
        reference: What the value was compared with (a threshold, a running median, the drift the optimizer
            explains).
        meaning: What such an event usually means for training.
    """

    step: int
    kind: str
    message: str
    tag: str | None = None
    layer: str | None = None
    value: float | None = None
    reference: float | None = None
    meaning: str = ""

    def markdown(self) -> str:
        """The alert as one line of TensorBoard text."""
        return f"**step {self.step}** · `{self.kind}` · {self.message}"
