"""The richness score: how far the NTK has moved from its initial value, mapped to [0, 1].

Two pieces of kernel evidence enter, each mapped to ``[0, 1]`` by a ramp in log space:

* the kernel distance ``S(K_0, K_t)`` (direction), from ``S_LAZY`` (0) to ``S_RICH`` (1);
* the relative change ``|K_t - K_0|_F / |K_0|_F`` (scale), from ``R_LAZY`` (0) to ``R_RICH`` (1).

The score is the larger of the two, because theory knows two rich signatures: the kernel rotates (``S`` grows
towards 1), or, from small initialisation, it grows by orders of magnitude while its direction moves
moderately (theory.md section 5.2). Lazy training keeps both small: ``S`` is quadratic in the change and
``S ~ delta^-4`` for the minimal model, the relative change is first order and ``~ m^{-1/2}`` with width.
Representation (CKA) and weight-change indicators are deliberately not part of the score: a layer carrying a
negligible share of the kernel can change its representation while the network stays lazy (section 5.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from regimescope.record import tag

S_LAZY = 1e-3
"""Kernel distance at or below which the direction evidence is 0."""
S_RICH = 1e-1
"""Kernel distance at or above which the direction evidence is 1."""
R_LAZY = 0.1
"""Relative kernel change at or below which the scale evidence is 0."""
R_RICH = 1.0
"""Relative kernel change at or above which the scale evidence is 1."""

DISTANCE_TAG = tag("kernel", "distance_from_init")
CHANGE_TAG = tag("kernel", "relative_change")


def log_ramp(value: float, low: float, high: float) -> float:
    """``0`` at or below ``low``, ``1`` at or above ``high``, linear in ``log(value)`` between."""
    if not value > low:
        return 0.0
    if value >= high:
        return 1.0
    return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))


def richness_evidence(scalars: Mapping[str, float]) -> dict[str, float]:
    """The evidence terms present in a record's scalars: ``{"direction": e_S, "scale": e_R}``."""
    evidence = {}
    if DISTANCE_TAG in scalars:
        evidence["direction"] = log_ramp(scalars[DISTANCE_TAG], S_LAZY, S_RICH)
    if CHANGE_TAG in scalars:
        evidence["scale"] = log_ramp(scalars[CHANGE_TAG], R_LAZY, R_RICH)
    return evidence


def richness_score(scalars: Mapping[str, float]) -> float | None:
    """``max(e_S, e_R)`` in ``[0, 1]``; ``None`` when the record holds no kernel evidence or a non-finite value."""
    evidence = richness_evidence(scalars)
    if not evidence or not all(math.isfinite(v) for v in evidence.values()):
        return None
    return max(evidence.values())
