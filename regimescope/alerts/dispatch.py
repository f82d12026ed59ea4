"""Delivering alerts to logging and to user callables, never letting a callable break training."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from regimescope.alerts.alert import Alert

logger = logging.getLogger("regimescope.alerts")

AlertCallback = Callable[[Alert], None]


class AlertDispatcher:
    """Sends each alert to ``logging`` (warning level) and to every user callable.

    A callable that raises is reported once through ``logging`` and then skipped; training goes on.
    """

    def __init__(self, callbacks: Iterable[AlertCallback] = ()) -> None:
        self.callbacks = list(callbacks)
        self._broken: set[int] = set()

    def dispatch(self, alert: Alert) -> None:
        """Deliver ``alert``."""
        logger.warning("regimescope step %d [%s]: %s", alert.step, alert.kind, alert.message)
        for index, callback in enumerate(self.callbacks):
            if index in self._broken:
                continue
            try:
                callback(alert)
            except Exception:
                self._broken.add(index)
                logger.exception("An on_alert callable raised; it will not be called again in this run.")
