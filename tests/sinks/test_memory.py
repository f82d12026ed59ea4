"""MemorySink keeps records and reads series back by tag."""

from __future__ import annotations

import numpy as np

from regimescope.record import Record
from regimescope.sinks import MemorySink

SCORE = "regimescope/regime/score"
ALERTS = "regimescope/alerts"


def test_series_by_tag() -> None:
    sink = MemorySink()
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    sink.write(Record(step=0, scalars={SCORE: 0.1}, histograms={"h": np.array([1.0, 2.0])}))
    sink.write(Record(step=10, scalars={SCORE: 0.4, "other": 1.0}, images={"img": image}))
    sink.write(Record(step=20, scalars={SCORE: 0.9}, texts={ALERTS: "regime shift"}))

    assert len(sink.records) == 3
    assert sink.scalars(SCORE) == ([0, 10, 20], [0.1, 0.4, 0.9])
    assert sink.scalars("other") == ([10], [1.0])
    assert sink.texts(ALERTS) == ([20], ["regime shift"])
    steps, histograms = sink.histograms("h")
    assert steps == [0]
    np.testing.assert_array_equal(histograms[0], [1.0, 2.0])
    assert sink.images("img")[0] == [10]
    assert sink.images("img")[1][0] is image
    assert sink.tags() == sorted([SCORE, "other", "h", "img", ALERTS])


def test_unknown_tag_is_empty() -> None:
    sink = MemorySink()
    sink.write(Record(step=0, scalars={SCORE: 0.5}))
    assert sink.scalars("regimescope/nope") == ([], [])
    assert sink.texts(ALERTS) == ([], [])


def test_resume_drops_the_records_of_later_steps() -> None:
    sink = MemorySink()
    for step in (0, 10, 20, 30):
        sink.write(Record(step))
    sink.resume(20)
    sink.write(Record(30))
    assert [r.step for r in sink.records] == [0, 10, 20, 30]
