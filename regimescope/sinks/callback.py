"""A sink that hands each record to a user function."""

from __future__ import annotations

from collections.abc import Callable

from regimescope.record import Record
from regimescope.sinks.base import Sink


class CallbackSink(Sink):
    """Calls a user function with every record, e.g. to forward values to another logger.

    Args:
        fn: Called as ``fn(record)`` once per measurement, on the main process only.

    Raises:
        TypeError: If ``fn`` is not callable.
    """

    def __init__(self, fn: Callable[[Record], None]) -> None:
        if not callable(fn):
            raise TypeError(
                f"CallbackSink expects a callable taking one Record, received {type(fn).__name__}; "
                "pass a function such as `lambda record: my_logger.log(record.scalars, step=record.step)`."
            )
        self.fn = fn

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self.fn, '__qualname__', type(self.fn).__name__)})"

    def write(self, record: Record) -> None:
        """Call the user function with ``record``."""
        self.fn(record)
