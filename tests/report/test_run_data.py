"""Reading runs for the report and the dashboard: alerts, sessions, per-layer grids, panels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from regimescope.record import Record
from regimescope.report.run_data import (
    BALANCE_PREFIX,
    LAYER_DISTANCE_PREFIX,
    SCORE_TAG,
    load_runs,
    parse_alerts,
    run_from_records,
    split_tag,
)
from regimescope.sinks import JSONL_NAME, JsonlSink, TornLineWarning


def test_parse_alerts_splits_joined_texts_and_keeps_notes() -> None:
    text = "**step 40** · `regime_shift` · regime lazy -> rich\n\n**step 40** · `kernel_jump` · velocity up"
    note = "**step 3** · measurement failed (RuntimeError: boom); measuring paused."
    rows = parse_alerts([(40, text), (3, note)])
    assert [(r.step, r.kind, r.message) for r in rows] == [
        (3, "note", "measurement failed (RuntimeError: boom); measuring paused."),
        (40, "regime_shift", "regime lazy -> rich"),
        (40, "kernel_jump", "velocity up"),
    ]


def _session(folder: Path, steps: list[int], value: float, resumed_after: int | None = None) -> None:
    with JsonlSink(folder / JSONL_NAME) as sink:
        if resumed_after is not None:
            sink.resume(resumed_after)
        for step in steps:
            sink.write(Record(step, scalars={SCORE_TAG: value}))


def test_a_folder_written_by_two_runs_reads_as_the_last_one(tmp_path: Path) -> None:
    _session(tmp_path, [0, 1, 2, 4], value=0.1)
    _session(tmp_path, [0, 1, 2], value=0.2)
    (run,) = load_runs(tmp_path)
    assert run.scalars[SCORE_TAG].steps == [0, 1, 2]
    assert run.scalars[SCORE_TAG].values == [0.2] * 3


def test_a_resumed_run_reads_as_lived_its_first_session_up_to_the_checkpoint_then_the_resumed_one(
    tmp_path: Path,
) -> None:
    _session(tmp_path, [0, 4, 8, 12, 16, 20, 24], value=0.1)  # crashed at step 27, after measuring 24
    _session(tmp_path, [24, 28, 32], value=0.2, resumed_after=20)
    (run,) = load_runs(tmp_path)
    score = run.scalars[SCORE_TAG]
    assert score.steps == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert score.values == [0.1] * 6 + [0.2] * 3


def test_a_torn_run_is_reported_with_every_complete_record(tmp_path: Path) -> None:
    _session(tmp_path, [0, 1, 2], value=0.1)
    with (tmp_path / JSONL_NAME).open("a") as file:
        file.write('{"step": 3, "scalars": {"regimescope/re')
    with pytest.warns(TornLineWarning, match=r"line\(s\) 4 "):
        (run,) = load_runs(tmp_path)
    assert run.scalars[SCORE_TAG].steps == [0, 1, 2]


def test_layer_grid_aligns_layers_on_the_union_of_steps() -> None:
    records = [
        Record(0, scalars={LAYER_DISTANCE_PREFIX + "fc1": 0.0, LAYER_DISTANCE_PREFIX + "fc2": 0.0}),
        Record(5, scalars={LAYER_DISTANCE_PREFIX + "fc1": 0.1}),
        Record(9, scalars={LAYER_DISTANCE_PREFIX + "fc2": math.nan, BALANCE_PREFIX + "fc1-fc2": 0.5}),
    ]
    run = run_from_records("r", records)
    grid = run.layer_grid(LAYER_DISTANCE_PREFIX)
    assert grid.layers == ["fc1", "fc2"] and grid.steps == [0, 5, 9]
    assert grid.values == [[0.0, 0.1, None], [0.0, None, None]]
    assert run.layer_grid(BALANCE_PREFIX).layers == ["fc1-fc2"]


def test_timeline_and_final_verdict() -> None:
    records = [
        Record(step, scalars={"regimescope/regime/score": score, "regimescope/regime/label": label})
        for step, score, label in ((0, 0.1, 0.0), (10, 0.5, 1.0), (20, 0.9, 2.0))
    ]
    run = run_from_records("r", records)
    assert run.timeline() == {"steps": [0, 10, 20], "score": [0.1, 0.5, 0.9], "label": ["lazy", "transitional", "rich"]}
    assert run.final() == ("rich", 0.9)
    assert run_from_records("empty", []).final() is None


def test_split_tag_names_panels_and_layers() -> None:
    assert split_tag("regimescope/kernel/velocity") == ("kernel/velocity", None)
    assert split_tag("regimescope/kernel/distance_from_init/features.0") == ("kernel/distance_from_init", "features.0")
    assert split_tag("regimescope/balance/fc1-fc2") == ("balance", "fc1-fc2")
    assert split_tag("regimescope/noise/kernel/velocity") == ("noise/kernel", "velocity")
