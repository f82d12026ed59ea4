"""Constructed measurement sequences for the alert-rule tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from regimescope.alerts import Alert, AlertRule, Observation
from regimescope.verdict import Verdict


def run_rule(rule: AlertRule, observations: Iterable[Observation]) -> list[Alert]:
    """Every alert ``rule`` raises over ``observations``, in order."""
    return [alert for observation in observations for alert in rule.evaluate(observation)]


def verdicts(labels: Sequence[str], scores: Sequence[float] | None = None, every: int = 10) -> list[Observation]:
    """One observation per label, ``every`` steps apart, carrying a verdict."""
    scores = scores or [{"lazy": 0.1, "transitional": 0.5, "rich": 0.9}[label] for label in labels]
    return [
        Observation(
            step=i * every, scalars={}, verdict=Verdict(step=i * every, score=s, label=label, evidence={"direction": s})
        )
        for i, (label, s) in enumerate(zip(labels, scores))
    ]


def series(
    tag: str,
    values: Sequence[float],
    noise: Sequence[float] | float = 0.0,
    every: int = 10,
    extra: dict[str, Sequence[float]] | None = None,
) -> list[Observation]:
    """Observations of one scalar ``tag`` (plus ``extra`` tags), with a noise estimate for ``tag``."""
    noises = [noise] * len(values) if isinstance(noise, float) else list(noise)
    observations = []
    for i, value in enumerate(values):
        scalars = {tag: value, **{name: column[i] for name, column in (extra or {}).items()}}
        observations.append(Observation(step=(i + 1) * every, scalars=scalars, noise={tag: noises[i]}))
    return observations
