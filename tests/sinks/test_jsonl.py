"""JsonlSink writes one JSON line per record; read_jsonl reads them back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from regimescope.record import Record
from regimescope.sinks import JsonlSink, read_jsonl

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


def test_bad_line_names_its_number(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"step": 0}\n\n{"step": 1, "scal\n')
    with pytest.raises(ValueError, match=r"run\.jsonl:3 "):
        read_jsonl(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_jsonl(tmp_path / "absent.jsonl")
