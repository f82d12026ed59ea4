"""Sinks that raise, through the monitor: training goes on bit-identical, every other sink gets every record and
is closed, each failing sink is logged once, and only ``strict=True`` raises."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import regimescope as rs
from regimescope.record import Record
from regimescope.sinks import JsonlSink
from tests.robustness._faults import RaisingSink, cut_writes, disk_full, tracebacks
from tests.robustness._logs import fresh, monitor, read_clean, same_parameters, steps, train, unmonitored_parameters

STEPS = 24
MEASURED = [0, 1, 2, 4, 8, 12, 16, 20, 24]


@pytest.mark.parametrize("error", [RuntimeError("user bug"), disk_full()], ids=["bug", "disk_full"])
def test_a_sink_whose_write_raises_is_logged_once_and_the_others_get_every_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    model, optimizer = fresh()
    failing, memory = RaisingSink(error, {"write"}), rs.MemorySink()
    mon = monitor(model, optimizer, sinks=[failing, memory], logdir=tmp_path).attach()
    with caplog.at_level(logging.INFO):
        train(model, optimizer, STEPS)
        mon.close()
    assert same_parameters(model, unmonitored_parameters(STEPS))
    assert steps(memory.records) == steps(read_clean(tmp_path / "regimescope.jsonl")) == MEASURED
    assert failing.calls == ["write"] * len(MEASURED) + ["close"]
    assert len(tracebacks(caplog)) == 1
    assert str(error) in caplog.text


@pytest.mark.parametrize("method", ["write", "resume", "close"])
def test_each_sink_method_raising_leaves_training_and_the_other_sinks_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    model, optimizer = fresh()
    first = monitor(model, optimizer, logdir=tmp_path).attach()
    train(model, optimizer, 8)
    state = first.state_dict()
    first.close()
    failing, memory = RaisingSink(disk_full(), {method}), rs.MemorySink()
    resumed = monitor(model, optimizer, sinks=[failing, memory], logdir=tmp_path)
    resumed.load_state_dict(state)
    with caplog.at_level(logging.ERROR):
        resumed.attach()
        train(model, optimizer, STEPS - 8)
        resumed.close()  # does not raise
    assert same_parameters(model, unmonitored_parameters(STEPS))
    assert failing.calls[0] == "resume" and failing.calls[-1] == "close"
    assert steps(memory.records) == [12, 16, 20, 24]
    assert steps(read_clean(tmp_path / "regimescope.jsonl")) == MEASURED
    assert len(tracebacks(caplog)) == 1
    JsonlSink(tmp_path / "regimescope.jsonl").close()  # every sink was closed: the logdir is free


def test_close_with_a_sink_out_of_disk_closes_the_sinks_after_it(tmp_path: Path) -> None:
    model, optimizer = fresh()
    failing, after = RaisingSink(disk_full(), {"close"}), RaisingSink(disk_full(), set())
    mon = monitor(model, optimizer, sinks=[failing, after], logdir=tmp_path).attach()
    train(model, optimizer, 4)
    mon.close()
    assert after.calls[-1] == "close"
    JsonlSink(tmp_path / "regimescope.jsonl").close()


def test_strict_raises_a_sink_failure_but_only_once_every_sink_is_closed(tmp_path: Path) -> None:
    model, optimizer = fresh()
    failing, after = RaisingSink(disk_full(), {"close"}), RaisingSink(disk_full(), set())
    mon = monitor(model, optimizer, sinks=[failing, after], logdir=tmp_path, strict=True).attach()
    train(model, optimizer, 4)
    with pytest.raises(OSError, match="No space left"):
        mon.close()
    assert after.calls[-1] == "close"
    JsonlSink(tmp_path / "regimescope.jsonl").close()
    mon.close()  # closed already: nothing left to raise


def test_a_user_callback_that_raises_never_reaches_the_training_loop(caplog: pytest.LogCaptureFixture) -> None:
    def callback(record: Record) -> None:
        raise ValueError(f"cannot log step {record.step}")

    model, optimizer = fresh()
    memory = rs.MemorySink()
    with caplog.at_level(logging.ERROR):
        with monitor(model, optimizer, sinks=[rs.CallbackSink(callback), memory]):
            train(model, optimizer, STEPS)
    assert steps(memory.records) == MEASURED
    assert same_parameters(model, unmonitored_parameters(STEPS))
    (logged,) = tracebacks(caplog)
    assert "CallbackSink(" in logged.getMessage() and "cannot log step 0" in caplog.text


def test_an_interrupt_inside_a_write_propagates_and_leaves_no_fragment_nor_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the JSONL line of step 8 is half written: it stops training, and the file stays whole."""
    path = tmp_path / "regimescope.jsonl"
    interrupted: list[int] = []

    def ctrl_c_in_step_8(fd: int, data: bytes) -> BaseException | None:
        if b'"step": 8,' not in data or interrupted:
            return None
        interrupted.append(fd)
        return KeyboardInterrupt()

    model, optimizer = fresh()
    with pytest.raises(KeyboardInterrupt):
        with monitor(model, optimizer, logdir=tmp_path):
            cut_writes(monkeypatch, ctrl_c_in_step_8)
            train(model, optimizer, STEPS)
    assert interrupted
    assert steps(read_clean(path)) == [0, 1, 2, 4, 8]  # step 8 kept, written whole at close
    assert not path.with_name("regimescope.jsonl.lock").exists()
