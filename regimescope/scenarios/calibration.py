"""Setting the verdict's thresholds from the scenarios' measurements rather than by guess.

For each kernel evidence ``v`` (the kernel distance ``S``, the relative change ``R``) two anchors come from the
scenarios: ``v_lazy``, the largest value any run theory calls lazy reaches, and ``v_rich``, the smallest value any run
theory calls rich *by that evidence* reaches (:class:`~regimescope.scenarios.theory.Signature`). The
score's ramp for ``v`` is then placed with the largest margin in log space: the transitional band
``[LAZY_BELOW, RICH_ABOVE]`` of the score covers the middle third of ``[log v_lazy, log v_rich]``, so the lazy
anchor, the two label boundaries and the rich anchor are equally spaced in log space. With ``g = log(v_rich /
v_lazy)`` and the ramp ``e(v) = log(v / low) / log(high / low)``:

    low = v_lazy * exp(-(g / 3) (LAZY_BELOW / (RICH_ABOVE - LAZY_BELOW) - 1)),
    high = v_rich * exp((g / 3) ((1 - RICH_ABOVE) / (RICH_ABOVE - LAZY_BELOW) - 1)).

With the labeler's 0.35 and 0.65 the anchors sit at scores 0.05 and 0.95.

The step-0 forecast's boundary on the lazy ratio is the geometric mean of its two anchors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from regimescope.scenarios.runner import Outcome
from regimescope.scenarios.theory import Signature, Theory
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE
from regimescope.verdict.score import Ramp


@dataclass(frozen=True)
class Calibration:
    """One evidence's calibrated ramp and the anchors it was placed between.

    Attributes:
        ramp: The ramp.
        lazy_anchor: The largest value a lazy run reached.
        rich_anchor: The smallest value a rich run (with this signature) reached.
        lazy_run: The scenario giving ``lazy_anchor``.
        rich_run: The scenario giving ``rich_anchor``.
    """

    ramp: Ramp
    lazy_anchor: float
    rich_anchor: float
    lazy_run: str = ""
    rich_run: str = ""


def calibrate_ramp(lazy_anchor: float, rich_anchor: float, lazy_run: str = "", rich_run: str = "") -> Calibration:
    """The max-margin ramp for one evidence (see the module docstring).

    Raises:
        ValueError: When the anchors do not separate (``lazy_anchor >= rich_anchor``) or are not positive: no
            threshold can then label every scenario right.
    """
    if not 0 < lazy_anchor < rich_anchor:
        raise ValueError(
            f"Lazy runs reach {lazy_anchor:.3g} and rich runs {rich_anchor:.3g}; expected 0 < lazy < rich so that a "
            "threshold can separate them. Check the scenarios' runs (a rich run too short, a lazy one too long)."
        )
    third = math.log(rich_anchor / lazy_anchor) / 3
    band = RICH_ABOVE - LAZY_BELOW
    ramp = Ramp(
        low=lazy_anchor * math.exp(-third * (LAZY_BELOW / band - 1)),
        high=rich_anchor * math.exp(third * ((1 - RICH_ABOVE) / band - 1)),
    )
    return Calibration(ramp, lazy_anchor, rich_anchor, lazy_run, rich_run)


def _anchor(runs: list[tuple[str, float]], pick) -> tuple[str, float]:
    return pick(runs, key=lambda run: run[1])


def calibrate_score(outcomes: Iterable[Outcome]) -> dict[Signature, Calibration]:
    """The ramps of both evidences from the runs theory calls lazy and the runs it calls rich.

    Lazy anchors come from :attr:`Theory.LAZY` runs; rich anchors from :attr:`Theory.RICH` and
    :attr:`Theory.DELAYED_RICH` runs listing the evidence among their signatures.

    Raises:
        ValueError: When an evidence has no lazy or no rich run, or its anchors do not separate.
    """
    outcomes = list(outcomes)
    values = {Signature.DIRECTION: lambda o: o.distance, Signature.SCALE: lambda o: o.change}
    calibrations = {}
    for signature, value in values.items():
        lazy = [(o.scenario.name, value(o)) for o in outcomes if o.scenario.theory is Theory.LAZY]
        rich = [
            (o.scenario.name, value(o))
            for o in outcomes
            if o.scenario.theory in (Theory.RICH, Theory.DELAYED_RICH) and signature in o.scenario.signatures
        ]
        if not lazy or not rich:
            raise ValueError(
                f"Calibrating {signature.value} needs lazy and rich runs; received {len(lazy)} lazy and {len(rich)} "
                "rich runs with that signature. Add scenarios of both kinds."
            )
        (lazy_run, lazy_value), (rich_run, rich_value) = _anchor(lazy, max), _anchor(rich, min)
        calibrations[signature] = calibrate_ramp(lazy_value, rich_value, lazy_run, rich_run)
    return calibrations


@dataclass(frozen=True)
class ForecastCalibration:
    """The forecast's boundary on the lazy ratio and its anchors.

    Attributes:
        boundary: ``sqrt(lazy_anchor * rich_anchor)``.
        lazy_anchor: The largest full-horizon lazy ratio of a lazy run.
        rich_anchor: The smallest fast-direction lazy ratio of a rich run.
        lazy_run: The scenario giving ``lazy_anchor``.
        rich_run: The scenario giving ``rich_anchor``.
    """

    boundary: float
    lazy_anchor: float
    rich_anchor: float
    lazy_run: str
    rich_run: str


def calibrate_forecast(outcomes: Iterable[Outcome]) -> ForecastCalibration:
    """The lazy-ratio boundary: geometric mean of the largest ratio a lazy run needs on every direction and the
    smallest a rich run needs on its fast directions.

    Raises:
        ValueError: When there is no lazy or no rich run with a forecast, or their ratios do not separate.
    """
    outcomes = [o for o in outcomes if o.forecast is not None and o.forecast.full is not None]
    lazy = [(o.scenario.name, o.forecast.full.change) for o in outcomes if o.scenario.theory is Theory.LAZY]
    rich = [(o.scenario.name, o.forecast.fast.change) for o in outcomes if o.scenario.theory is Theory.RICH]
    if not lazy or not rich:
        raise ValueError(f"Calibrating the forecast needs lazy and rich runs; received {len(lazy)} and {len(rich)}.")
    (lazy_run, lazy_value), (rich_run, rich_value) = _anchor(lazy, max), _anchor(rich, min)
    return ForecastCalibration(geometric_midpoint(lazy_value, rich_value), lazy_value, rich_value, lazy_run, rich_run)


def geometric_midpoint(lazy_anchor: float, rich_anchor: float) -> float:
    """``sqrt(lazy_anchor * rich_anchor)``: the boundary with equal log margins to both anchors.

    Raises:
        ValueError: When the anchors do not separate or are not positive.
    """
    if not 0 < lazy_anchor < rich_anchor:
        raise ValueError(
            f"Lazy runs reach {lazy_anchor:.3g} and rich runs {rich_anchor:.3g}; expected 0 < lazy < rich."
        )
    return math.sqrt(lazy_anchor * rich_anchor)
