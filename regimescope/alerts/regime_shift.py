"""The regime-shift rule: the verdict's label moved (lazy -> transitional -> rich, and back)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding
from regimescope.tags import REGIME_SCORE
from regimescope.verdict.labeler import Verdict

MEANINGS = {
    ("lazy", "transitional"): "the NTK has started to move: features are beginning to be learnt.",
    ("lazy", "rich"): "the NTK moved far from its initial value: the network is learning features (rich regime).",
    ("transitional", "rich"): "the kernel has moved far from initialisation: the network is in the rich regime.",
    ("transitional", "lazy"): "the kernel settled back near its initial value: training behaves like a kernel method.",
    ("rich", "transitional"): "the kernel's movement since initialisation has dropped back below the rich level.",
    ("rich", "lazy"): "the kernel is back near its initial value (lazy regime).",
}
"""What each label change usually means, by ``(from, to)``."""


class RegimeShift(AlertRule):
    """Alerts when the verdict's label differs from the last label announced.

    The first verdict of a run is announced silently. The label itself already has hysteresis (a score must
    pass a boundary by a margin), so the default ``patience=1`` alerts on every label change; a larger patience
    waits until the new label has held that many measurements and reports the move from the last announced
    label (``lazy -> rich`` when the run went through ``transitional`` in between).

    Args:
        patience: Consecutive measurements the new label must hold.
        cooldown: Measurements after an alert during which the same change (e.g. ``lazy -> rich``) is not
            announced again.
    """

    kind = "regime_shift"

    def __init__(self, *, patience: int = 1, cooldown: int = 0) -> None:
        super().__init__(patience=patience, cooldown=cooldown)
        self._announced: Verdict | None = None
        self._pending: Verdict | None = None

    def findings(self, observation: Observation) -> list[Finding]:
        """A finding while the current label differs from the announced one."""
        verdict = observation.verdict
        if verdict is None:
            return []
        if self._announced is None:
            self._announced = verdict
            return []
        before = self._announced
        if verdict.label == before.label:
            return []
        evidence = ", ".join(f"{name} {value:.2f}" for name, value in sorted(verdict.evidence.items()))
        message = (
            f"regime {before.label} -> {verdict.label} (score {before.score:.2f} -> {verdict.score:.2f}; "
            f"evidence {evidence})"
        )
        finding = Finding(
            key=f"{before.label}->{verdict.label}",
            message=message,
            tag=REGIME_SCORE,
            value=verdict.score,
            reference=before.score,
            meaning=MEANINGS[(before.label, verdict.label)],
        )
        self._pending = verdict
        return [finding]

    def fired(self, finding: Finding) -> None:
        """The label of this finding is now the announced one."""
        self._announced = self._pending

    def _own_state(self) -> dict[str, Any]:
        """The announced and pending verdicts."""
        return {"announced": _plain(self._announced), "pending": _plain(self._pending)}

    def _load_own_state(self, state: dict[str, Any]) -> None:
        self._announced = None if state["announced"] is None else Verdict(**state["announced"])
        self._pending = None if state["pending"] is None else Verdict(**state["pending"])


def _plain(verdict: Verdict | None) -> dict[str, Any] | None:
    return None if verdict is None else asdict(verdict)
