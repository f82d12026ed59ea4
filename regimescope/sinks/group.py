"""Every sink of a monitor as one: each record reaches every sink, one failing sink never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from regimescope.record import Record
from regimescope.sinks.base import Sink

logger = logging.getLogger(__name__)


class SinkGroup(Sink):
    """Writes each record to every sink, and closes every sink, whatever some of them raise.

    A sink's failure (an ``Exception`` from ``write``, ``resume``, ``flush`` or ``close``: a full disk, a user
    callback that raises) is logged with its traceback the first time, then only counted; when the sink works again
    the count is logged, and a later failure is logged in full again. A failing ``close`` is always logged with its
    message at WARNING, even after failures in a row: it is the sink's last word, and says what it could not keep (a
    :class:`~regimescope.sinks.JsonlSink` over a full disk names the steps never written). :meth:`close` then logs
    each failing sink's count. Nothing is raised unless ``strict``: then, after every sink had its turn, the first
    failure is raised. ``KeyboardInterrupt`` and ``SystemExit`` go through at once (in :meth:`close`, once the other
    sinks are closed). Sinks that are not :class:`Sink` subclasses need only ``write``; a missing ``resume``,
    ``flush`` or ``close`` is skipped.

    Args:
        sinks: The sinks, written in this order.
        strict: Raise the first failure of a call once every sink had its turn.

    Attributes:
        sinks: The sinks (empty after :meth:`close`).
    """

    def __init__(self, sinks: Iterable[Sink] = (), *, strict: bool = False) -> None:
        self.sinks = list(sinks)
        self.strict = strict
        self._in_a_row: dict[int, int] = {}
        self._total: dict[int, tuple[Sink, int]] = {}

    def __repr__(self) -> str:
        return f"SinkGroup({self.sinks!r})"

    @property
    def failures(self) -> list[tuple[Sink, int]]:
        """``(sink, failures)`` of every sink that failed since the group was made, in order of first failure."""
        return list(self._total.values())

    def write(self, record: Record) -> None:
        """Write ``record`` to every sink.

        Raises:
            Exception: Only when ``strict``: the first sink failure.
        """
        self._each(self.sinks, f"write step {record.step}", lambda sink: sink.write(record))

    def resume(self, step: int) -> None:
        """Tell every sink that the run resumed from a checkpoint taken at ``step`` (see :meth:`Sink.resume`)."""
        self._each(self.sinks, f"resume after step {step}", _optional("resume", step))

    def flush(self) -> None:
        """Flush every sink."""
        self._each(self.sinks, "flush", _optional("flush"))

    def close(self) -> None:
        """Close every sink, then log how often each one failed. Closing twice is harmless.

        Raises:
            Exception: Only when ``strict``: the first sink failure.
        """
        sinks, self.sinks = self.sinks, []
        try:
            self._each(sinks, "close", _optional("close"), finish_on_interrupt=True)
        finally:
            for sink, count in self._total.values():
                logger.warning("regimescope: sink %r failed %d time(s) in all.", sink, count)
            self._total.clear()
            self._in_a_row.clear()

    def _each(
        self, sinks: list[Sink], action: str, call: Callable[[Sink], None], *, finish_on_interrupt: bool = False
    ) -> None:
        first: Exception | None = None
        interrupt: BaseException | None = None
        for sink in sinks:
            try:
                call(sink)
            except Exception as error:
                self._failed(sink, action, error)
                if self.strict and first is None:
                    first = error
            except BaseException as stop:  # KeyboardInterrupt, SystemExit
                if not finish_on_interrupt:
                    raise
                interrupt = interrupt or stop
            else:
                self._worked(sink)
        if interrupt is not None:
            raise interrupt
        if first is not None:
            raise first

    def _failed(self, sink: Sink, action: str, error: Exception) -> None:
        in_a_row = self._in_a_row.get(id(sink), 0) + 1
        self._in_a_row[id(sink)] = in_a_row
        self._total[id(sink)] = (sink, self._total.get(id(sink), (sink, 0))[1] + 1)
        if in_a_row == 1:
            logger.exception(
                "regimescope: sink %r failed to %s; training goes on, the other sinks still receive every record, "
                "and further failures of this sink are counted (logged when it works again and at close).",
                sink, action,
            )
        elif action == "close":
            logger.warning("regimescope: sink %r failed to close: %s", sink, error)
        else:
            logger.debug("regimescope: sink %r failed to %s (%d failures in a row).", sink, action, in_a_row)

    def _worked(self, sink: Sink) -> None:
        in_a_row = self._in_a_row.pop(id(sink), 0)
        if in_a_row:
            logger.warning("regimescope: sink %r works again after %d failure(s) in a row.", sink, in_a_row)


def _optional(method: str, *args: object) -> Callable[[Sink], None]:
    """Call ``sink.<method>(*args)`` where the sink has that method."""

    def call(sink: Sink) -> None:
        bound = getattr(sink, method, None)
        if bound is not None:
            bound(*args)

    return call
