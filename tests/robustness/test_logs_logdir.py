"""A logdir the monitor cannot own: a second monitor on it, a path it cannot write, a disk that fills up mid-run."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import regimescope as rs
from tests.robustness._faults import cut_writes, disk_full, read_only_below
from tests.robustness._logs import fresh, monitor, read_clean, same_parameters, steps, train, unmonitored_parameters

STEPS = 24
MEASURED = [0, 1, 2, 4, 8, 12, 16, 20, 24]


def test_a_second_monitor_on_the_same_logdir_is_refused_at_attach_until_the_first_closes(tmp_path: Path) -> None:
    model, optimizer = fresh()
    first = monitor(model, optimizer, logdir=tmp_path).attach()
    other_model, other_optimizer = fresh()
    second = monitor(other_model, other_optimizer, logdir=tmp_path)
    with pytest.raises(RuntimeError, match=r"another monitor .*Give each RegimeMonitor its own logdir"):
        second.attach()
    train(model, optimizer, STEPS)
    train(other_model, other_optimizer, STEPS)  # the refused monitor left no hook behind
    assert same_parameters(model, unmonitored_parameters(STEPS))
    assert same_parameters(other_model, unmonitored_parameters(STEPS))
    assert second.history == []
    first.close()
    assert steps(read_clean(tmp_path / "regimescope.jsonl")) == MEASURED
    second.attach()  # the logdir is free again
    second.close()


@pytest.mark.parametrize("where", ["under_a_file", "read_only"])
def test_a_logdir_that_cannot_be_written_fails_at_attach_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "under_a_file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        logdir = tmp_path / "notes.txt" / "run"
    else:
        logdir = tmp_path / "run"
        read_only_below(monkeypatch, tmp_path)
    model, optimizer = fresh()
    with pytest.raises(OSError, match=r"cannot write .*Choose a folder this process can create and write"):
        monitor(model, optimizer, logdir=logdir).attach()
    train(model, optimizer, 8)
    assert same_parameters(model, unmonitored_parameters(8))


def test_a_disk_that_fills_up_mid_run_is_logged_once_and_nothing_written_is_lost_or_torn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes fail with ENOSPC from step 5 to step 17 (each after writing part of its line); space comes back."""
    path = tmp_path / "regimescope.jsonl"
    model, optimizer = fresh()
    full = {"now": False}
    cut_writes(
        monkeypatch,
        lambda fd, data: disk_full() if full["now"] and os.path.samestat(os.fstat(fd), os.stat(path)) else None,
        part=1 / 3,
    )
    memory = rs.MemorySink()
    mon = monitor(model, optimizer, logdir=tmp_path, sinks=[memory]).attach()
    with caplog.at_level(logging.WARNING):
        train(model, optimizer, 5)
        full["now"] = True
        for _ in range(12):
            train(model, optimizer, 1)
            assert steps(read_clean(path)) == [0, 1, 2, 4]  # readable throughout
        full["now"] = False
        train(model, optimizer, STEPS - 17)
        mon.close()
    assert same_parameters(model, unmonitored_parameters(STEPS))
    assert not mon.paused
    records = read_clean(path)
    assert steps(records) == steps(memory.records) == MEASURED
    assert [json.dumps(r.scalars) for r in records] == [json.dumps(r.scalars) for r in mon.history]
    jsonl_failures = [r for r in caplog.records if r.exc_info and "JsonlSink" in r.getMessage()]
    assert len(jsonl_failures) == 1 and "No space left on device" in caplog.text
    assert "works again after 3 failure(s) in a row" in caplog.text


def test_a_disk_still_full_at_close_says_at_warning_which_steps_were_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills up after step 4 and stays full: steps 8 and 12 wait in memory, and close() cannot write them."""
    path = tmp_path / "regimescope.jsonl"
    model, optimizer = fresh()
    mon = monitor(model, optimizer, logdir=tmp_path).attach()
    train(model, optimizer, 5)
    cut_writes(monkeypatch, lambda fd, data: disk_full() if os.path.samestat(os.fstat(fd), os.stat(path)) else None)
    with caplog.at_level(logging.WARNING):
        train(model, optimizer, 7)
        mon.close()  # does not raise
    monkeypatch.undo()
    lost = [r for r in caplog.records if r.levelno >= logging.WARNING and "never written" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING
    assert "records of steps 8..12 (2) never written" in lost[0].getMessage()
    assert steps(read_clean(path)) == [0, 1, 2, 4] and steps(mon.history) == [0, 1, 2, 4, 8, 12]
    assert not path.with_name("regimescope.jsonl.lock").exists()
