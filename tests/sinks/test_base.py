"""The Sink contract: abstract write, default flush/close, context manager."""

from __future__ import annotations

import pytest

from regimescope.record import Record
from regimescope.sinks import Sink


class _CountingSink(Sink):
    def __init__(self) -> None:
        self.written: list[int] = []
        self.closed = 0

    def write(self, record: Record) -> None:
        self.written.append(record.step)

    def close(self) -> None:
        self.closed += 1


def test_sink_without_write_cannot_be_built() -> None:
    class NoWrite(Sink):
        pass

    with pytest.raises(TypeError):
        NoWrite()  # type: ignore[abstract]


def test_context_manager_closes_once_even_on_error() -> None:
    sink = _CountingSink()
    with pytest.raises(RuntimeError, match="boom"):
        with sink as entered:
            assert entered is sink
            sink.write(Record(step=3))
            raise RuntimeError("boom")
    assert sink.written == [3]
    assert sink.closed == 1
