"""The richness score: how far the NTK has moved from its initial value, mapped to [0, 1].

Two pieces of kernel evidence enter, each mapped to ``[0, 1]`` by a ramp in log space:

* direction: the kernel distance ``S(K_0, K_t)``, 0 at ``S_LAZY``, 1 at ``S_RICH``;
* scale: the relative change ``|K_t - K_0|_F / |K_0|_F``, 0 at ``R_LAZY``, 1 at ``R_RICH``.

The score is the larger of the two, because theory knows two rich signatures: the kernel rotates (``S`` grows
towards 1), or, from small initialisation, it grows by orders of magnitude while its direction moves
moderately (theory.md section 5.2; the balanced minimal model started along ``beta*`` grows by ``s / |beta_0|``
with ``S = 0`` exactly). Lazy training keeps both small: ``S`` is quadratic in the change and ``S ~ delta^-4`` for
the minimal model, the relative change is first order and ``~ m^{-1/2}`` with width.

The four ends are calibrated, not guessed: :mod:`regimescope.scenarios` trains the scenarios of
theory.md sections 4-6 with a monitor attached, and each ramp is placed with the largest margin in log space
between the largest value a lazy run reaches and the smallest value a rich run reaches (the transitional band
covers the middle third of that gap; ``benchmarks/verdicts.py`` prints the anchors and recomputes the ends;
``tests/scenarios`` checks them). With these ends the label leaves ``lazy`` at ``S = 9.9e-4`` or ``R = 0.27`` and
becomes ``rich`` at ``S = 8.3e-3`` or ``R = 1.6``.

Which tag carries each piece of evidence is declared by the indicators (``Output(..., evidence="direction")``):
:func:`evidence_sources` reads the declarations, so an indicator measuring the same quantity another way (a
sketched kernel, say) can feed the score. Representation (CKA) and weight-change indicators are deliberately not
part of the score: a layer carrying a
negligible share of the kernel can change its representation while the network stays lazy (section 5.5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regimescope.indicators.base import Indicator

S_LAZY = 8.3e-5
"""Kernel distance at or below which the direction evidence is 0 (lazy anchor 1.2e-4: the minimal model, delta = +9)."""
S_RICH = 0.10
"""Kernel distance at or above which the direction evidence is 1 (rich anchor 0.072: the balanced minimal model)."""
R_LAZY = 0.036
"""Relative kernel change at or below which the scale evidence is 0 (lazy anchor 0.048: minimal model, delta = +9)."""
R_RICH = 12.0
"""Relative kernel change at or above which the scale evidence is 1 (rich anchor 9.0: the aligned balanced minimal
model, whose kernel grows tenfold)."""



def log_ramp(value: float, low: float, high: float) -> float:
    """``0`` at or below ``low``, ``1`` at or above ``high``, linear in ``log(value)`` between."""
    if not value > low:
        return 0.0
    if value >= high:
        return 1.0
    return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))


@dataclass(frozen=True)
class Ramp:
    """A log-space ramp: ``0`` at or below ``low``, ``1`` at or above ``high``.

    Attributes:
        low: Value at or below which the evidence is 0.
        high: Value at or above which the evidence is 1.
    """

    low: float
    high: float

    def __call__(self, value: float) -> float:
        """The evidence ``log(value / low) / log(high / low)``, clipped to ``[0, 1]``."""
        return log_ramp(value, self.low, self.high)

    def boundary(self, score: float) -> float:
        """The value at which the evidence equals ``score`` (e.g. where a label boundary lies)."""
        return self.low * (self.high / self.low) ** score


RAMPS = {"direction": Ramp(S_LAZY, S_RICH), "scale": Ramp(R_LAZY, R_RICH)}
"""The evidence ramps by name; the names are the keys of :attr:`~regimescope.verdict.labeler.Verdict.evidence`."""


def evidence_sources(indicators: Iterable[Indicator]) -> dict[str, str]:
    """``evidence name -> tag`` from the indicators' declared outputs (``Output(tag, evidence=name)``).

    Raises:
        ValueError: When an indicator declares evidence the score has no ramp for, or two declare the same one.
    """
    sources: dict[str, str] = {}
    for indicator in indicators:
        for output in indicator.outputs:
            if output.evidence is None:
                continue
            if output.evidence not in RAMPS:
                raise ValueError(
                    f"Indicator {indicator.name!r} declares evidence {output.evidence!r}; the richness score knows "
                    f"{sorted(RAMPS)}. Declare one of them, or none."
                )
            if output.evidence in sources:
                raise ValueError(
                    f"Evidence {output.evidence!r} is declared twice ({sources[output.evidence]!r} and "
                    f"{output.tag!r}); keep one indicator that declares it."
                )
            sources[output.evidence] = output.tag
    return sources


@functools.cache
def default_sources() -> dict[str, str]:
    """The evidence sources of the built-in indicators (:func:`~regimescope.indicators.defaults.default_indicators`)."""
    from regimescope.indicators.defaults import default_indicators

    return evidence_sources(default_indicators())


def richness_evidence(scalars: Mapping[str, float], sources: Mapping[str, str] | None = None) -> dict[str, float]:
    """The evidence terms present in a record's scalars: ``{"direction": e_S, "scale": e_R}``.

    Args:
        scalars: A record's scalars.
        sources: ``evidence name -> tag`` (:func:`evidence_sources`); default: the built-in indicators'.
    """
    sources = default_sources() if sources is None else sources
    return {name: RAMPS[name](scalars[tag]) for name, tag in sources.items() if tag in scalars}


def richness_score(scalars: Mapping[str, float], sources: Mapping[str, str] | None = None) -> float | None:
    """``max(e_S, e_R)`` in ``[0, 1]``; ``None`` when the record holds no kernel evidence.

    Args:
        scalars: A record's scalars.
        sources: ``evidence name -> tag`` (:func:`evidence_sources`); default: the built-in indicators'.
    """
    evidence = richness_evidence(scalars, sources)
    return max(evidence.values()) if evidence else None
