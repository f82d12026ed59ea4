"""The non-finite rule: a measured value is NaN or infinite."""

from __future__ import annotations

import math

import torch

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding
from regimescope.capture.snapshot import Snapshot
from regimescope.record import TAG_ROOT, tag

SHOWN = 3
"""Tags named in the message; the rest are counted."""


def _first_bad(values: torch.Tensor) -> float:
    return float(values[~torch.isfinite(values)].reshape(-1)[0])


def non_finite_values(snapshot: Snapshot) -> dict[str, float]:
    """The non-finite parts of a capture, as scalars the :class:`NonFinite` rule reports.

    A diverged model has NaN or infinite weights, outputs or kernel blocks; the indicators cannot be computed on
    them (a singular value decomposition of a NaN kernel fails), so the monitor records these markers instead:
    ``regimescope/weights/value/<parameter>``, ``regimescope/outputs/value`` and ``regimescope/kernel/block/<layer>``,
    each holding the first non-finite value found.

    Returns:
        ``tag -> nan or +-inf``; empty when everything is finite.
    """
    parts = {tag("weights", "value", name): w for name, w in snapshot.weights.items()}
    if snapshot.outputs is not None:
        parts[tag("outputs", "value")] = snapshot.outputs
    parts.update({tag("kernel", "block", layer): k for layer, k in snapshot.layer_kernels.items()})
    return {name: _first_bad(values) for name, values in parts.items() if not bool(torch.isfinite(values).all())}


def _layer(name: str) -> str | None:
    parts = name.split("/")
    return parts[3] if len(parts) > 3 and parts[0] == TAG_ROOT else None


class NonFinite(AlertRule):
    """Alerts when any measured scalar is NaN or infinite (one alert per episode, naming the tags).

    Args:
        patience: Consecutive measurements with a non-finite value before the alert.
        cooldown: Measurements after an alert during which it is not announced again.
    """

    kind = "non_finite"
    meaning = (
        "weights, outputs or the kernel overflowed or became NaN: training has most likely diverged (step size too "
        "large, a division by zero or a log of zero in the loss); the verdict is suspended until values are finite."
    )

    def findings(self, observation: Observation) -> list[Finding]:
        """One finding when at least one scalar is not finite."""
        bad = sorted(name for name, value in observation.scalars.items() if not math.isfinite(value))
        if not bad:
            return []
        shown = ", ".join(f"{name} = {observation.scalars[name]}" for name in bad[:SHOWN])
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        layers = sorted({layer for layer in map(_layer, bad) if layer is not None})
        return [
            Finding(
                key="non_finite",
                message=f"{len(bad)} non-finite value(s): {shown}{more}",
                tag=bad[0],
                layer=", ".join(layers) or None,
                value=observation.scalars[bad[0]],
            )
        ]
