"""The conservation-broken rule: a layer pair's balance drifted beyond what the optimizer's steps explain."""

from __future__ import annotations

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding, check_positive
from regimescope.tags import BALANCE_DRIFT, BALANCE_EXPLAINED, by_layer, layer_tag


class ConservationBroken(AlertRule):
    """Alerts when ``regimescope/balance_drift/<pair>`` exceeds the drift finite gradient steps explain.

    The explained drift ``regimescope/balance_explained/<pair>`` is an upper bound for plain gradient descent
    (see :class:`~regimescope.conservation.explained_drift.ExplainedDrift`); the rule holds when
    ``drift > tolerance * explained + sigmas * noise`` and ``drift > minimum``, ``noise`` being the rounding
    floor of the measured drift. Pairs without an explained drift (no optimizer attached) are not judged.

    Args:
        tolerance: Multiple of the explained drift allowed (momentum's effective step is an estimate).
        minimum: Drifts at or below this are never reported (a negligible change of the initial balance).
        sigmas: Noise floors the excess must exceed.
        patience: Consecutive measurements the excess must hold.
        cooldown: Measurements after an alert during which the same pair is not announced again.

    Raises:
        ValueError: For a non-positive ``tolerance``, ``minimum`` or ``sigmas``.
    """

    kind = "conservation_broken"
    meaning = (
        "the layer balance is no longer conserved (adaptive optimizer, weight decay or a non-homogeneous part of "
        "the model), so the initial balance no longer predicts the regime: read the kernel indicators instead."
    )

    def __init__(
        self,
        *,
        tolerance: float = 2.0,
        minimum: float = 1e-3,
        sigmas: float = 3.0,
        patience: int = 1,
        cooldown: int = 0,
    ) -> None:
        super().__init__(patience=patience, cooldown=cooldown)
        self.tolerance = check_positive("tolerance", tolerance)
        self.minimum = check_positive("minimum", minimum)
        self.sigmas = check_positive("sigmas", sigmas)

    def findings(self, observation: Observation) -> list[Finding]:
        """A finding per pair whose drift is beyond the explained bound."""
        found = []
        explained_by_pair = by_layer(observation.scalars, BALANCE_EXPLAINED)
        for pair, drift in by_layer(observation.scalars, BALANCE_DRIFT).items():
            name = layer_tag(BALANCE_DRIFT, pair)
            explained = explained_by_pair.get(pair)
            if explained is None or not drift == drift:
                continue
            allowed = self.tolerance * explained + self.sigmas * observation.noise_of(name)
            if drift <= max(allowed, self.minimum):
                continue
            message = (
                f"balance drift {drift:.3g} of the pair's initial scale, while gradient steps explain at most "
                f"{explained:.3g}"
            )
            found.append(Finding(key=name, message=message, tag=name, layer=pair, value=drift, reference=explained))
        return found
