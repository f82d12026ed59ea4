"""JsonlSink writes one JSON line per record, whole or not at all, one writer at a time; read_jsonl reads them back,
torn lines skipped and resumed sessions stitched as the run was lived."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from regimescope.record import Record
from regimescope.sinks import JsonlSink, TornLineWarning, read_jsonl
from regimescope.sinks.jsonl import lived_run
from tests.robustness._faults import cut_writes, disk_full, read_only_below

SCORE = "regimescope/regime/score"


def _records() -> list[Record]:
    return [
        Record(
            step=step,
            scalars={SCORE: 0.1 * step, "regimescope/kernel/velocity": np.float32(0.25)},
            histograms={"regimescope/balance_values/fc1-fc2": np.arange(4, dtype=np.float32) * step},
            images={"regimescope/kernel/heatmap": np.zeros((2, 2, 3), dtype=np.uint8)},
            texts={"regimescope/alerts": f"alert {step}"} if step == 2 else {},
        )
        for step in range(3)
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "run.jsonl"
    with JsonlSink(path) as sink:
        for record in _records():
            sink.write(record)
    assert len(path.read_text().splitlines()) == 3

    back = read_jsonl(path)
    assert [r.step for r in back] == [0, 1, 2]
    for original, read in zip(_records(), back):
        assert read.scalars == pytest.approx({k: float(v) for k, v in original.scalars.items()})
        assert read.histograms.keys() == original.histograms.keys()
        for key, values in original.histograms.items():
            np.testing.assert_allclose(read.histograms[key], values)
        assert read.texts == original.texts
        assert read.images == {}


def test_each_write_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    sink = JsonlSink(path)
    sink.write(Record(step=5, scalars={SCORE: 0.5}))
    assert json.loads(path.read_text())["scalars"] == {SCORE: 0.5}
    sink.close()


def test_appends_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    for step in (0, 1):
        with JsonlSink(path) as sink:
            sink.write(Record(step=step))
    assert [r.step for r in read_jsonl(path)] == [0, 1]


def test_non_finite_scalars_survive(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with JsonlSink(path) as sink:
        sink.write(Record(step=0, scalars={"a": float("nan"), "b": float("inf")}))
    (record,) = read_jsonl(path)
    assert math.isnan(record.scalars["a"])
    assert record.scalars["b"] == float("inf")


def test_write_after_close_says_what_to_do(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "run.jsonl")
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(Record(step=1))


def test_folder_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="expects a file path"):
        JsonlSink(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_jsonl(tmp_path / "absent.jsonl")


def _steps(records: list[Record]) -> list[int]:
    return [record.step for record in records]


def _line(step: int, value: float = 0.5) -> str:
    return json.dumps(Record(step, scalars={SCORE: value}).to_json())


def test_a_torn_last_line_is_skipped_with_one_warning_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(f"{_line(0)}\n\n{_line(1)}\n" + _line(2)[:17])
    with pytest.warns(TornLineWarning, match=r"run\.jsonl: skipped 1 line fragment\(s\).* at line\(s\) 4 ") as caught:
        assert _steps(read_jsonl(path)) == [0, 1]
    assert len(caught) == 1


def test_a_record_glued_onto_a_torn_line_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(f"{_line(0)}\n{_line(1)[:25]}{_line(2, 0.25)}\n{_line(3)}{_line(4)}\n")
    with pytest.warns(TornLineWarning, match=r"at line\(s\) 2 "):
        records = read_jsonl(path)
    assert _steps(records) == [0, 2, 3, 4]
    assert records[1].scalars == {SCORE: 0.25}


def test_a_line_that_is_no_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'not json\n[1, 2]\n{"no_step": 1}\n{"step": "x"}\n\x00\x00\xff\n' + _line(7).encode() + b"\n")
    with pytest.warns(TornLineWarning, match=r"skipped 5 .* line\(s\) 1, 2, 3, 4, 5 "):
        assert _steps(read_jsonl(path)) == [7]


def test_an_empty_file_reads_as_no_record(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")  # a run killed before its first measurement
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_jsonl(path) == []


def test_a_clean_file_reads_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with JsonlSink(path) as sink:
        for record in _records():
            sink.write(record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _steps(read_jsonl(path)) == [0, 1, 2]


def test_appending_to_a_torn_file_starts_on_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(f"{_line(0)}\n" + _line(1)[:20])
    with JsonlSink(path) as sink:
        sink.write(Record(step=2, scalars={SCORE: 0.75}))
    lines = path.read_text().split("\n")
    assert lines[1] == _line(1)[:20] and json.loads(lines[2])["step"] == 2 and lines[3] == ""
    with pytest.warns(TornLineWarning, match=r"line\(s\) 2 "):
        assert _steps(read_jsonl(path)) == [0, 2]


def test_a_resume_mark_replaces_the_steps_run_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with JsonlSink(path) as sink:
        for step in (0, 10, 20, 30):  # crashed at 35, after measuring 30
            sink.write(Record(step, scalars={SCORE: 0.1}))
    with JsonlSink(path) as sink:  # resumed from the checkpoint of step 20
        sink.resume(20)
        for step in (30, 40):
            sink.write(Record(step, scalars={SCORE: 0.2}))
    assert json.loads(path.read_text().splitlines()[4]) == {"step": 20, "resumed": True}
    lived = read_jsonl(path)
    assert _steps(lived) == [0, 10, 20, 30, 40]
    assert [r.scalars[SCORE] for r in lived] == [0.1, 0.1, 0.1, 0.2, 0.2]
    assert _steps(read_jsonl(path, as_lived=False)) == [0, 10, 20, 30, 30, 40]


@pytest.mark.parametrize(
    ("entries", "lived"),
    [
        ([0, 1, 2], [0, 1, 2]),
        ([0, 1, 2, 4, 0, 1, 2], [0, 1, 2]),  # a second run into the same folder: the last one
        ([0, 4, 8, 12, 8, 12], [0, 4, 8, 12]),  # an unmarked resume (an older writer): from its first step on
        ([0, 4, 8, 12, "resume 4", 8, 12], [0, 4, 8, 12]),
        ([0, 4, 6, 8, "resume 4", 8], [0, 4, 8]),  # 6 was measured after the checkpoint, by the crashed session
        (["resume 10", 12, 14], [12, 14]),  # resumed into a fresh folder
        ([0, 4, "resume 2", "resume 0", 1], [0, 1]),  # resumed twice, from earlier and earlier checkpoints
    ],
)
def test_lived_run(entries: list, lived: list[int]) -> None:
    parsed = [int(e.split()[1]) if isinstance(e, str) else Record(e) for e in entries]
    assert _steps(lived_run(parsed)) == lived


def _fail_writes(monkeypatch: pytest.MonkeyPatch, sink: JsonlSink, failures: list[BaseException]) -> None:
    """The sink's next writes each write half their data, then raise the next of ``failures``."""
    target = sink._fd
    cut_writes(monkeypatch, lambda fd, data: failures.pop(0) if fd == target and failures else None)


def _two_records_on_a_full_disk(path: Path, monkeypatch: pytest.MonkeyPatch, failures: int) -> JsonlSink:
    """A sink that wrote step 0, then steps 1 and 2 on a full disk (which stays full for ``failures`` writes)."""
    sink = JsonlSink(path)
    sink.write(Record(0))
    _fail_writes(monkeypatch, sink, [disk_full() for _ in range(failures)])
    for step in (1, 2):
        with pytest.raises(OSError, match="No space left"):
            sink.write(Record(step))
        assert _steps(read_jsonl(path)) == [0]  # cut back to its last complete line
        assert path.read_text().endswith("\n")
    return sink


def test_a_full_disk_keeps_the_record_and_writes_it_later_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.jsonl"
    sink = _two_records_on_a_full_disk(path, monkeypatch, failures=2)
    assert sink.pending == 2
    sink.write(Record(3))  # space again
    assert sink.pending == 0 and sink.dropped == 0
    assert _steps(read_jsonl(path)) == [0, 1, 2, 3]
    sink.close()


def test_kept_records_are_bounded_and_the_oldest_dropped_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.jsonl"
    line_bytes = len(json.dumps(Record(1).to_json())) + 1
    sink = JsonlSink(path, max_pending_bytes=2 * line_bytes)
    _fail_writes(monkeypatch, sink, [disk_full() for _ in range(5)])
    with caplog.at_level(logging.ERROR, logger="regimescope.sinks.jsonl"):
        for step in range(1, 6):
            with pytest.raises(OSError):
                sink.write(Record(step))
    assert sink.pending == 2 and sink.dropped == 3
    assert [r.getMessage().split(": ")[1][:32] for r in caplog.records] == ["the record of step 1 is dropped"]
    with caplog.at_level(logging.WARNING, logger="regimescope.sinks.jsonl"):
        sink.write(Record(6))
    assert "writes again; 3 record(s) of steps 1..3 were dropped" in caplog.text
    assert _steps(read_jsonl(path)) == [4, 5, 6]
    sink.close()


def test_closing_on_a_full_disk_says_which_records_were_never_written_and_releases_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.jsonl"
    sink = _two_records_on_a_full_disk(path, monkeypatch, failures=3)
    with pytest.raises(OSError, match=r"steps 1\.\.2 \(2\) never written") as raised:
        sink.close()
    assert raised.value.errno == errno.ENOSPC
    assert _steps(read_jsonl(path)) == [0]
    assert not path.with_name("run.jsonl.lock").exists()
    sink.close()
    with JsonlSink(path) as again:  # the lock is free
        again.write(Record(3))
    assert _steps(read_jsonl(path)) == [0, 3]


def test_an_interrupt_inside_a_write_leaves_no_fragment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with JsonlSink(path) as sink:
            sink.write(Record(0))
            _fail_writes(monkeypatch, sink, [KeyboardInterrupt()])
            sink.write(Record(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fragment anywhere
        assert _steps(read_jsonl(path)) == [0, 1]  # kept, and written by close()
    assert not path.with_name("run.jsonl.lock").exists()


def test_a_second_writer_on_the_same_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    first = JsonlSink(path)
    with pytest.raises(RuntimeError, match=rf"process {os.getpid()} .*its own logdir.*monitor\.close\(\)"):
        JsonlSink(path)
    first.write(Record(0))
    first.close()
    with JsonlSink(path) as second:
        second.write(Record(1))
    assert _steps(read_jsonl(path)) == [0, 1]


def test_a_path_under_a_regular_file_fails_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match=r"cannot write .*Choose a folder this process can create and write"):
        JsonlSink(tmp_path / "file" / "run" / "run.jsonl")


def test_a_read_only_file_system_fails_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_only_below(monkeypatch, tmp_path)
    with pytest.raises(OSError, match=r"Read-only file system.*Choose a folder") as raised:
        JsonlSink(tmp_path / "run.jsonl")
    assert raised.value.errno == errno.EROFS


def test_a_folder_without_write_permission_fails_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user (root) may write into a folder without write permission")
        with pytest.raises(PermissionError, match="Choose a folder"):
            JsonlSink(folder / "run.jsonl")
    finally:
        folder.chmod(0o755)
