"""Delivering alerts: a warnings category, logging, user callables and stop requests; never breaking training."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable

from regimescope.alerts.alert import Alert
from regimescope.alerts.warning import RegimeWarning

logger = logging.getLogger("regimescope.alerts")

AlertCallback = Callable[[Alert], None]


class AlertDispatcher:
    """Sends each alert to ``warnings`` (:class:`RegimeWarning`), ``logging`` and user callables.

    A user sees each alert once: as a :class:`RegimeWarning` (shown by Python's default warning filters), with the
    ``regimescope.alerts`` log record at INFO level for log files; with ``warn=False`` the log record is at WARNING
    level instead, so it is the one shown.

    A callable that raises is reported once through ``logging`` and then skipped; training goes on (with
    ``strict=True`` its error propagates at once instead). An alert whose ``kind`` is in ``stop_on`` sets
    :attr:`stop_requested`, which the framework adapters turn into a graceful stop (and a plain loop can check); so
    does an alert that a ``warnings`` filter turns into an error (``warnings.simplefilter("error", RegimeWarning)``),
    instead of letting the exception escape into the measurement.

    Args:
        callbacks: Callables receiving each :class:`Alert`.
        warn: Also issue each alert as a :class:`RegimeWarning`.
        stop_on: Alert kinds that request a stop, e.g. ``{"non_finite"}``.
        strict: Raise what a callable raises instead of skipping it from then on.

    Attributes:
        stop_requested: Whether an alert asked training to stop.
        stop_reason: The first alert that asked, or ``None``.
    """

    def __init__(
        self,
        callbacks: Iterable[AlertCallback] = (),
        *,
        warn: bool = True,
        stop_on: Iterable[str] = (),
        strict: bool = False,
    ) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not callable(callback):
                raise TypeError(
                    f"`on_alert` must hold callables taking one Alert; received {type(callback).__name__}. "
                    "Pass e.g. `on_alert=lambda alert: print(alert.message)`."
                )
        if isinstance(stop_on, str):
            raise TypeError(
                f"`stop_on` must be a collection of alert kinds; received the string {stop_on!r}. "
                f"Wrap it: ({stop_on!r},)."
            )
        self.warn = warn
        self.strict = strict
        self.stop_on = frozenset(stop_on)
        self.stop_requested = False
        self.stop_reason: Alert | None = None
        self._broken: set[int] = set()

    def dispatch(self, alert: Alert) -> None:
        """Deliver ``alert`` to every destination."""
        level = logging.INFO if self.warn else logging.WARNING
        logger.log(level, "regimescope [%s]: %s", alert.kind, alert.message)
        for index, callback in enumerate(self.callbacks):
            if index in self._broken:
                continue
            try:
                callback(alert)
            except Exception:
                if self.strict:
                    raise
                self._broken.add(index)
                logger.exception("An on_alert callable raised; it will not be called again in this run.")
        if alert.kind in self.stop_on:
            self._request_stop(alert)
        if self.warn:
            try:
                warnings.warn(f"[{alert.kind}] {alert.message}", RegimeWarning, stacklevel=2)
            except RegimeWarning:
                self._request_stop(alert)

    def _request_stop(self, alert: Alert) -> None:
        if not self.stop_requested:
            logger.warning("regimescope: alert %r at step %d requests training to stop.", alert.kind, alert.step)
            self.stop_requested = True
            self.stop_reason = alert
