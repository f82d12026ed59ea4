"""When a framework adapter stops training: a regime label is reached, or an alert of a given kind fires."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from regimescope.alerts import AlertRule, default_rules
from regimescope.monitor import RegimeMonitor
from regimescope.verdict import LABELS


@dataclass(frozen=True)
class StopCondition:
    """The ``stop_on=`` of an adapter, split into regime labels and alert kinds.

    Every rank of a distributed job sees the same verdict and the same alerts (rank 0 measures and shares them),
    so every rank reaches the same decision and the trainer's stop flag agrees across ranks.

    Attributes:
        labels: Regime labels (``"lazy"``, ``"transitional"``, ``"rich"``) that stop training once the verdict
            carries one of them.
        alert_kinds: Alert kinds (e.g. ``"regime_shift"``, ``"non_finite"``) that stop training when such an alert
            fires; the adapter passes them to ``RegimeMonitor(stop_on=...)``.
    """

    labels: frozenset[str] = frozenset()
    alert_kinds: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, stop_on: str | Iterable[str] | None, rules: Iterable[AlertRule] | None = None) -> StopCondition:
        """Split ``stop_on`` into labels and alert kinds, checking each name.

        Args:
            stop_on: A label or alert kind, several of them, or ``None`` (never stop).
            rules: The monitor's alert rules (default: :func:`regimescope.alerts.default_rules`), whose kinds are
                the alert kinds accepted.

        Raises:
            ValueError: For a name that is neither a regime label nor the kind of one of ``rules``.
        """
        names = [stop_on] if isinstance(stop_on, str) else list(stop_on or ())
        kinds = sorted({rule.kind for rule in (default_rules() if rules is None else rules)})
        unknown = [name for name in names if name not in LABELS and name not in kinds]
        if unknown:
            raise ValueError(
                f"`stop_on` names {unknown}, which are neither regime labels {list(LABELS)} nor kinds of this "
                f"monitor's alert rules {kinds}; pass e.g. stop_on='rich' or stop_on='non_finite' (or add an alert "
                "rule of that kind through `alert_rules=`)."
            )
        return cls(
            labels=frozenset(name for name in names if name in LABELS),
            alert_kinds=frozenset(name for name in names if name not in LABELS),
        )

    def reached(self, monitor: RegimeMonitor) -> bool:
        """Whether ``monitor``'s verdict carries one of :attr:`labels`, or an alert asked training to stop."""
        verdict = monitor.regime
        return monitor.stop_requested or (verdict is not None and verdict.label in self.labels)
