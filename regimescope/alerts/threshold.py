"""User rules: any indicator crossing a threshold."""

from __future__ import annotations

import fnmatch

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding, check_positive
from regimescope.tags import ROOT


class Threshold(AlertRule):
    """Alerts when a scalar goes above ``above`` or below ``below`` by more than its measurement noise.

    ``tags`` is a tag or a shell-style pattern over tags, so one rule can watch every layer:
    ``Threshold("regimescope/representation/cka_to_init/*", below=0.5, meaning="...")``. Each matching tag is
    judged (and alerted, patience and cool-down counted) on its own. Where the tag has a noise estimate, the
    crossing must exceed ``sigmas`` of it.

    Args:
        tags: A tag, or an ``fnmatch`` pattern such as ``"regimescope/kernel/distance_from_init/*"``.
        above: Alert when the value exceeds this.
        below: Alert when the value falls under this.
        name: The alerts' ``kind``.
        meaning: What crossing the threshold means, for the alert's message.
        sigmas: Noise standard errors the crossing must exceed.
        patience: Consecutive measurements the crossing must hold.
        cooldown: Measurements after an alert during which the same tag is not announced again.

    Raises:
        ValueError: When neither ``above`` nor ``below`` is given, or ``below > above``.
        TypeError: When ``tags`` is not a string.
    """

    def __init__(
        self,
        tags: str,
        *,
        above: float | None = None,
        below: float | None = None,
        name: str = "threshold",
        meaning: str = "a user threshold was crossed.",
        sigmas: float = 3.0,
        patience: int = 1,
        cooldown: int = 0,
    ) -> None:
        super().__init__(patience=patience, cooldown=cooldown)
        if not isinstance(tags, str):
            raise TypeError(
                f"`tags` must be a tag or a pattern string; received {type(tags).__name__}. "
                "Pass e.g. 'regimescope/kernel/distance_from_init/*'."
            )
        if above is None and below is None:
            raise ValueError("Threshold needs `above=` or `below=` (or both); received neither.")
        if above is not None and below is not None and below > above:
            raise ValueError(f"`below` ({below}) is larger than `above` ({above}); swap them.")
        self.tags = tags
        self.above = above
        self.below = below
        self.kind = name
        self.meaning = meaning
        self.sigmas = check_positive("sigmas", sigmas)

    def findings(self, observation: Observation) -> list[Finding]:
        """A finding per matching tag beyond a threshold."""
        found = []
        for name, value in observation.scalars.items():
            if not fnmatch.fnmatchcase(name, self.tags) or value != value:
                continue
            margin = self.sigmas * observation.noise_of(name)
            if self.above is not None and value > self.above + margin:
                side, limit = "above", self.above
            elif self.below is not None and value < self.below - margin:
                side, limit = "below", self.below
            else:
                continue
            parts = name.split("/")
            layer = "/".join(parts[3:]) if parts[0] == ROOT and len(parts) > 3 else None
            message = f"{name} = {value:.4g} is {side} {limit:.4g}"
            found.append(Finding(key=name, message=message, tag=name, layer=layer, value=value, reference=limit))
        return found

    def __repr__(self) -> str:
        return f"Threshold({self.tags!r}, above={self.above}, below={self.below}, name={self.kind!r})"
