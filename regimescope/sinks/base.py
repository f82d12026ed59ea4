"""The contract every sink keeps: receive records, learn of a resume, flush them, release resources."""

from __future__ import annotations

import abc
from types import TracebackType

from regimescope.record import Record


class Sink(abc.ABC):
    """Where records go: a tiny contract in the spirit of accelerate's trackers.

    The monitor calls :meth:`write` once per measurement, and only on the main process
    (see :func:`regimescope.distributed.is_main_process`), so sinks never gate on rank themselves.
    A sink that holds a backend (a file, a writer) imports that backend lazily, when it is built.

    Sinks are context managers: leaving the ``with`` block calls :meth:`close`.
    """

    @abc.abstractmethod
    def write(self, record: Record) -> None:
        """Store or forward one measurement.

        Args:
            record: Everything one measurement produced, keyed by TensorBoard tag.
        """

    def resume(self, step: int) -> None:
        """Learn that the run goes on from a checkpoint taken at ``step``: what this sink holds for later steps came
        from a session that ran past its last checkpoint and crashed, and the resumed session writes those steps
        again. Sinks that keep nothing across sessions keep this default, which does nothing.

        Args:
            step: The step of the checkpoint the run resumed from.
        """

    def flush(self) -> None:
        """Push buffered output to its destination. Sinks without a buffer keep this default, which does nothing."""

    def close(self) -> None:
        """Flush and release held resources. Sinks that hold none keep this default, which does nothing."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
