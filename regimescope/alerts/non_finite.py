"""The non-finite rule: a measured value is NaN or infinite."""

from __future__ import annotations

import math

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding
from regimescope.tags import KERNEL_BLOCK_VALUE, OUTPUTS_VALUE, ROOT, WEIGHTS_VALUE

SHOWN = 3
"""Tags named in the message; the rest are counted."""

MARKERS = (f"{WEIGHTS_VALUE}/", OUTPUTS_VALUE, f"{KERNEL_BLOCK_VALUE}/")
"""Prefixes of the markers :class:`~regimescope.indicators.non_finite.NonFiniteValues` writes for non-finite weights,
outputs and kernel blocks."""


def _layer(name: str) -> str | None:
    parts = name.split("/")
    return parts[3] if len(parts) > 3 and parts[0] == ROOT else None


class NonFinite(AlertRule):
    """Alerts when the model's weights, outputs or kernel hold NaN or infinite values (one alert per episode, naming
    the tags).

    It reads the markers :class:`~regimescope.indicators.non_finite.NonFiniteValues` writes, not every scalar: a
    ratio that is undefined on a healthy model (the relative change of a layer that starts at zero) is not
    divergence, and indicators leave such values out.

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
        """One finding when at least one marker holds a non-finite value."""
        bad = sorted(
            name
            for name, value in observation.scalars.items()
            if name.startswith(MARKERS) and not math.isfinite(value)
        )
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
