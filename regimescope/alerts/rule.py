"""The contract of an alert rule, and the patience / cool-down every rule shares."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from regimescope.alerts.alert import Alert
from regimescope.alerts.observation import Observation


@dataclass(frozen=True)
class Finding:
    """A condition a rule sees at one measurement; it becomes an :class:`Alert` once patience is met.

    Attributes:
        key: What patience and cool-down are counted per (e.g. the tag, so two layers alert independently).
        message: What moved, by how much, where (the step and the rule's meaning are added by the rule).
        tag: The indicator's TensorBoard tag (``None`` for the verdict's label).
        layer: The layer or layer pair, when the quantity is per layer.
        value: The indicator's value.
        reference: What the value is compared with.
        meaning: What it usually means, when it depends on the finding (else the rule's :attr:`meaning`).
    """

    key: str
    message: str
    tag: str | None = None
    layer: str | None = None
    value: float | None = None
    reference: float | None = None
    meaning: str = ""


def check_count(name: str, value: int, minimum: int) -> int:
    """``value`` when it is an int ``>= minimum``; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum} (a number of measurements); received {value!r}.")
    return value


def check_positive(name: str, value: float) -> float:
    """``value`` as a float when it is a finite number ``> 0``; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ValueError(f"`{name}` must be a finite number > 0; received {value!r}.")
    return float(value)


class AlertRule(abc.ABC):
    """A rule over measurements: subclasses say which conditions hold now; this class decides when to alert.

    A condition (a :class:`Finding`, per ``key``) must hold at ``patience`` consecutive measurements before it
    alerts, and alerts once per episode: it is re-armed only when the condition stops holding. After an alert the
    same key stays silent for ``cooldown`` further measurements even if it is re-armed and holds again, so a
    quantity flickering around a threshold alerts at most once per cool-down.

    Subclasses set :attr:`kind` and :attr:`meaning` and implement :meth:`findings`.

    Attributes:
        kind: The rule's name, carried by its alerts.
        meaning: What the rule's alerts usually mean for training.

    Args:
        patience: Consecutive measurements a condition must hold (1: alert at the first).
        cooldown: Measurements after an alert during which the same key does not alert again.

    Raises:
        ValueError: When ``patience < 1`` or ``cooldown < 0``.
    """

    kind: str = ""
    meaning: str = ""

    def __init__(self, *, patience: int = 1, cooldown: int = 0) -> None:
        self.patience = check_count("patience", patience, 1)
        self.cooldown = check_count("cooldown", cooldown, 0)
        self._streaks: dict[str, int] = {}
        self._fired_in_episode: set[str] = set()
        self._last_alert: dict[str, int] = {}
        self._measurements = 0

    @abc.abstractmethod
    def findings(self, observation: Observation) -> list[Finding]:
        """The conditions that hold at this measurement (rules may update their own history here)."""

    def evaluate(self, observation: Observation) -> list[Alert]:
        """Alerts due at this measurement, after patience and cool-down."""
        self._measurements += 1
        holding = {finding.key: finding for finding in self.findings(observation)}
        for key in list(self._streaks):
            if key not in holding:
                del self._streaks[key]
                self._fired_in_episode.discard(key)
        alerts = []
        for key, finding in holding.items():
            self._streaks[key] = self._streaks.get(key, 0) + 1
            if self._streaks[key] < self.patience or key in self._fired_in_episode:
                continue
            last = self._last_alert.get(key)
            if last is not None and self._measurements - last <= self.cooldown:
                continue
            self._fired_in_episode.add(key)
            self._last_alert[key] = self._measurements
            self.fired(finding)
            alerts.append(self._alert(observation.step, finding))
        return alerts

    def state_dict(self) -> dict[str, Any]:
        """The rule's running state (patience streaks, episodes, cool-downs and the subclass's history) as plain
        containers, for checkpoints: a resumed run alerts exactly as an uninterrupted one."""
        return {
            "streaks": dict(self._streaks),
            "fired": sorted(self._fired_in_episode),
            "last_alert": dict(self._last_alert),
            "measurements": self._measurements,
            "own": self._own_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self._streaks = dict(state["streaks"])
        self._fired_in_episode = set(state["fired"])
        self._last_alert = dict(state["last_alert"])
        self._measurements = int(state["measurements"])
        self._load_own_state(state["own"])

    def _own_state(self) -> dict[str, Any]:
        """The subclass's history (plain containers); rules without one keep the default, ``{}``."""
        return {}

    def _load_own_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_own_state` output."""

    def fired(self, finding: Finding) -> None:
        """Called when ``finding`` becomes an alert (rules that track what they announced override it)."""

    def _alert(self, step: int, finding: Finding) -> Alert:
        where = f" in {finding.layer}" if finding.layer else ""
        meaning = finding.meaning or self.meaning
        return Alert(
            step=step,
            kind=self.kind,
            message=f"{finding.message} at step {step}{where}: {meaning}",
            tag=finding.tag,
            layer=finding.layer,
            value=finding.value,
            reference=finding.reference,
            meaning=meaning,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(patience={self.patience}, cooldown={self.cooldown})"
