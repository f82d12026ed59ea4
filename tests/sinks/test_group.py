"""SinkGroup: every record reaches every sink, every sink is closed, each failing sink is reported once."""

from __future__ import annotations

import logging

import pytest

from regimescope.record import Record
from regimescope.sinks import MemorySink, SinkGroup
from tests.robustness._faults import RaisingSink, disk_full

GROUP_LOGGER = "regimescope.sinks.group"


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == GROUP_LOGGER and r.exc_info]


def test_every_record_reaches_every_sink_and_a_failing_write_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing, after = RaisingSink(RuntimeError("callback bug"), {"write"}), MemorySink()
    group = SinkGroup([failing, after])
    with caplog.at_level(logging.DEBUG, logger=GROUP_LOGGER):
        for step in range(50):
            group.write(Record(step))
    assert [r.step for r in after.records] == list(range(50))
    (logged,) = _tracebacks(caplog)
    assert "RaisingSink() failed to write step 0" in logged.getMessage()
    assert "callback bug" in caplog.text  # the traceback
    assert group.failures == [(failing, 50)]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=GROUP_LOGGER):
        group.close()
    assert "RaisingSink() failed 50 time(s) in all" in caplog.text
    assert failing.calls[-1] == "close"


def test_a_sink_that_works_again_is_logged_and_a_later_failure_in_full(caplog: pytest.LogCaptureFixture) -> None:
    flaky = RaisingSink(disk_full(), {"write"})
    group = SinkGroup([flaky])
    with caplog.at_level(logging.WARNING, logger=GROUP_LOGGER):
        group.write(Record(0))
        group.write(Record(1))
        flaky.failing = set()
        group.write(Record(2))
        assert "works again after 2 failure(s) in a row" in caplog.text
        flaky.failing = {"write"}
        group.write(Record(3))
    assert len(_tracebacks(caplog)) == 2
    assert group.failures == [(flaky, 3)]


def test_close_closes_every_sink_whatever_some_raise(caplog: pytest.LogCaptureFixture) -> None:
    out_of_disk = RaisingSink(disk_full(), {"close"})
    broken = RaisingSink(ValueError("bad close"), {"close"})
    last = RaisingSink(RuntimeError("unused"), set())
    group = SinkGroup([out_of_disk, broken, last])
    with caplog.at_level(logging.ERROR, logger=GROUP_LOGGER):
        group.close()
    assert [s.calls for s in (out_of_disk, broken, last)] == [["close"]] * 3
    assert len(_tracebacks(caplog)) == 2
    assert group.sinks == []
    group.close()  # twice is harmless
    assert last.calls == ["close"]


def test_strict_raises_the_first_failure_once_every_sink_had_its_turn() -> None:
    first = RaisingSink(disk_full(), {"write", "close"})
    second = RaisingSink(ValueError("second"), {"write", "close"})
    memory = MemorySink()
    group = SinkGroup([first, second, memory], strict=True)
    with pytest.raises(OSError, match="No space left"):
        group.write(Record(4))
    assert [r.step for r in memory.records] == [4] and second.calls == ["write"]
    with pytest.raises(OSError, match="No space left"):
        group.close()
    assert second.calls == ["write", "close"]


def test_an_interrupt_in_a_write_goes_through_at_once() -> None:
    interrupted, after = RaisingSink(KeyboardInterrupt(), {"write"}), MemorySink()
    group = SinkGroup([interrupted, after])
    with pytest.raises(KeyboardInterrupt):
        group.write(Record(0))
    assert after.records == []
    assert group.failures == []


def test_an_interrupt_in_a_close_goes_through_once_the_others_are_closed() -> None:
    interrupted = RaisingSink(KeyboardInterrupt(), {"close"})
    after = RaisingSink(RuntimeError("unused"), set())
    group = SinkGroup([interrupted, after])
    with pytest.raises(KeyboardInterrupt):
        group.close()
    assert after.calls == ["close"]


def test_resume_and_flush_reach_every_sink_and_are_optional_for_duck_typed_sinks() -> None:
    class WriteOnly:
        def __init__(self) -> None:
            self.steps: list[int] = []

        def write(self, record: Record) -> None:
            self.steps.append(record.step)

    duck, memory, counted = WriteOnly(), MemorySink(), RaisingSink(RuntimeError("unused"), set())
    for step in (0, 10, 20, 30):
        memory.write(Record(step))
    group = SinkGroup([duck, memory, counted], strict=True)
    group.resume(10)
    group.flush()
    group.write(Record(20))
    group.close()
    assert duck.steps == [20]
    assert [r.step for r in memory.records] == [0, 10, 20]
    assert counted.calls == ["resume", "flush", "write", "close"]


def test_a_failing_close_after_failures_in_a_row_is_logged_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    """The close of a sink that kept failing says what it could not keep: that reaches the log at WARNING."""
    full = RaisingSink(disk_full(), {"write"})
    group = SinkGroup([full])
    group.write(Record(0))
    full.error, full.failing = OSError("steps 1..2 never written"), {"write", "close"}
    with caplog.at_level(logging.WARNING, logger=GROUP_LOGGER):
        group.write(Record(1))
        group.close()
    (lost,) = [r for r in caplog.records if "never written" in r.getMessage()]
    assert lost.levelno == logging.WARNING and "RaisingSink() failed to close" in lost.getMessage()
    assert "RaisingSink() failed 3 time(s) in all" in caplog.text
