"""CallbackSink forwards records to a user function."""

from __future__ import annotations

import pytest

from regimescope.record import Record
from regimescope.sinks import CallbackSink


def test_forwards_each_record() -> None:
    seen: list[Record] = []
    sink = CallbackSink(seen.append)
    first, second = Record(step=1), Record(step=2)
    sink.write(first)
    sink.write(second)
    assert seen == [first, second]


def test_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="expects a callable"):
        CallbackSink("not a function")  # type: ignore[arg-type]
