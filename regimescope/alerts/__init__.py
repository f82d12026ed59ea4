"""Alerts: rules over verdicts and records, and their delivery."""

from regimescope.alerts.alert import Alert
from regimescope.alerts.dispatch import AlertDispatcher
from regimescope.alerts.regime_shift import regime_shift

__all__ = ["Alert", "AlertDispatcher", "regime_shift"]
