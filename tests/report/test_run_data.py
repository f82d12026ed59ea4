"""Reading runs for the report and the dashboard: alerts, sessions, per-layer grids, panels."""

from __future__ import annotations

import math

from regimescope.record import Record
from regimescope.report.run_data import (
    BALANCE_PREFIX,
    LAYER_DISTANCE_PREFIX,
    last_session,
    parse_alerts,
    run_from_records,
    split_tag,
)


def test_parse_alerts_splits_joined_texts_and_keeps_notes() -> None:
    text = "**step 40** · `regime_shift` · regime lazy -> rich\n\n**step 40** · `kernel_jump` · velocity up"
    note = "**step 3** · measurement failed (RuntimeError: boom); measuring paused."
    rows = parse_alerts([(40, text), (3, note)])
    assert [(r.step, r.kind, r.message) for r in rows] == [
        (3, "note", "measurement failed (RuntimeError: boom); measuring paused."),
        (40, "regime_shift", "regime lazy -> rich"),
        (40, "kernel_jump", "velocity up"),
    ]


def test_last_session_keeps_the_latest_run_into_the_same_folder() -> None:
    records = [Record(s) for s in (0, 1, 2, 4, 0, 1, 2)]
    assert [r.step for r in last_session(records)] == [0, 1, 2]
    assert [r.step for r in last_session(records[:4])] == [0, 1, 2, 4]


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
