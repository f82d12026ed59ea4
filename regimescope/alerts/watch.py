"""Running the alert rules on each measurement, so that a failing rule never stops the others or training."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from regimescope.alerts.alert import Alert
from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule

logger = logging.getLogger(__name__)


class AlertWatch:
    """Evaluates every rule on each observation, in order.

    A rule that raises is reported once through ``logging`` and switched off for the rest of the run (or, with
    ``strict=True``, the error propagates).

    Args:
        rules: The rules (each an :class:`~regimescope.alerts.rule.AlertRule`).
        strict: Raise errors from rules instead of switching them off.

    Raises:
        TypeError: When a rule is not an ``AlertRule``.
    """

    def __init__(self, rules: Iterable[AlertRule], *, strict: bool = False) -> None:
        self.rules = list(rules)
        for rule in self.rules:
            if not isinstance(rule, AlertRule):
                raise TypeError(
                    f"`alert_rules` must hold regimescope.alerts.AlertRule instances; received {type(rule).__name__}. "
                    "Use a built-in rule, `regimescope.alerts.Threshold(tag, above=...)`, or subclass AlertRule."
                )
        self.strict = strict
        self._off: set[int] = set()

    def state_dict(self) -> dict[str, Any]:
        """Each rule's running state (by position, with its class name) and which rules are switched off."""
        return {
            "rules": [{"rule": type(rule).__name__, "state": rule.state_dict()} for rule in self.rules],
            "off": sorted(self._off),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output when the rules are the same kinds in the same order; otherwise the
        rules start afresh (logged), since a rule's history means nothing to another rule."""
        saved = [entry["rule"] for entry in state["rules"]]
        if saved != [type(rule).__name__ for rule in self.rules]:
            logger.warning("regimescope: the alert rules differ from the checkpoint's (%s); they start afresh.",
                           ", ".join(saved))
            return
        for rule, entry in zip(self.rules, state["rules"]):
            rule.load_state_dict(entry["state"])
        self._off = set(state["off"])

    def evaluate(self, observation: Observation) -> list[Alert]:
        """The alerts every active rule raises at this observation."""
        alerts: list[Alert] = []
        for index, rule in enumerate(self.rules):
            if index in self._off:
                continue
            try:
                alerts.extend(rule.evaluate(observation))
            except Exception:
                if self.strict:
                    raise
                self._off.add(index)
                logger.exception(
                    "regimescope: alert rule %r failed at step %d; it is switched off.", rule, observation.step
                )
        return alerts
