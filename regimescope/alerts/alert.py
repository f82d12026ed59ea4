"""An alert: something about the regime changed and the user should know."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    """One event.

    Attributes:
        step: Global step at which it fired.
        kind: Rule name, e.g. ``"regime_shift"``.
        message: What moved, by how much, and what it usually means.
    """

    step: int
    kind: str
    message: str

    def markdown(self) -> str:
        """The alert as one line of TensorBoard text."""
        return f"**step {self.step}** · `{self.kind}` · {self.message}"
