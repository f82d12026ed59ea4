"""Many records: the writing sinks hold nothing per record, so their memory stays flat; over a disk that stays full
the records kept for later are bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from regimescope.record import Record
from regimescope.sinks import CallbackSink, JsonlSink, SinkGroup, TensorBoardSink, read_jsonl
from tests.robustness._faults import cut_writes, disk_full
from tests.robustness._memory import growth


def _record(step: int) -> Record:
    scalars = {f"regimescope/kernel/metric_{i}": step * 1e-3 + i for i in range(4)}
    return Record(step, scalars=scalars, histograms={"regimescope/balance_values/a-b": [0.5 * step] * 16},
                  texts={"regimescope/regime/explanation": f"step {step}: lazy"})


def test_jsonl_tensorboard_and_callback_sinks_stay_flat_over_many_records(tmp_path: Path) -> None:
    """A record kept per write would be >= 300 bytes each; what remains is allocator and protobuf slack. TensorBoard's
    writer thread may hold up to ``MAX_QUEUE`` events not yet written, a bounded backlog: it is drained before each
    reading."""
    forwarded = {"count": 0}

    def forward(record: Record) -> None:
        forwarded["count"] += 1

    group = SinkGroup([JsonlSink(tmp_path / "regimescope.jsonl"), TensorBoardSink(tmp_path), CallbackSink(forward)])
    kept = growth(lambda step: group.write(_record(step)), warm=200, more=300, settle=group.flush)
    group.close()
    assert kept < 64 * 1024, f"{kept} bytes kept by the sinks after 300 records"
    assert len(read_jsonl(tmp_path / "regimescope.jsonl")) == forwarded["count"] == 500


def test_records_kept_over_a_disk_that_stays_full_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = JsonlSink(tmp_path / "regimescope.jsonl", max_pending_bytes=64 * 1024)
    cut_writes(monkeypatch, lambda fd, data: disk_full() if fd == sink._fd else None, part=0)

    def write(step: int) -> None:
        with pytest.raises(OSError):
            sink.write(_record(step))

    kept = growth(write, warm=200, more=1000)
    assert kept < 128 * 1024, f"{kept} bytes kept after 1000 unwritable records"
    assert sink.dropped > 1000 and 0 < sink.pending < 200
    monkeypatch.undo()  # space again
    sink.close()
    assert [r.step for r in read_jsonl(tmp_path / "regimescope.jsonl")][-1] == 1199
