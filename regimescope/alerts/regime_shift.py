"""The regime-shift rule: every change of the verdict's label is an alert."""

from __future__ import annotations

from regimescope.alerts.alert import Alert
from regimescope.verdict.labeler import Verdict

MEANINGS = {
    ("lazy", "transitional"): "the NTK has started to move: features are beginning to be learnt.",
    ("lazy", "rich"): "the NTK moved far from its initial value: the network is learning features (rich regime).",
    ("transitional", "rich"): "the kernel has moved far from initialisation: the network is in the rich regime.",
    ("transitional", "lazy"): "the kernel settled back near its initial value: training behaves like a kernel method.",
    ("rich", "transitional"): "the kernel's movement since initialisation has dropped back below the rich level.",
    ("rich", "lazy"): "the kernel is back near its initial value (lazy regime).",
}


def regime_shift(previous: Verdict | None, current: Verdict) -> Alert | None:
    """An alert when ``current.label`` differs from ``previous.label``; ``None`` otherwise."""
    if previous is None or previous.label == current.label:
        return None
    evidence = ", ".join(f"{name} {value:.2f}" for name, value in sorted(current.evidence.items()))
    message = (
        f"regime {previous.label} -> {current.label} (score {previous.score:.2f} -> {current.score:.2f}; "
        f"evidence {evidence}): {MEANINGS[(previous.label, current.label)]}"
    )
    return Alert(step=current.step, kind="regime_shift", message=message)
