"""Records for the log tests, importable without torch (the subprocess tests start fast)."""

from __future__ import annotations

from regimescope.record import Record

SCORE = "regimescope/regime/score"


def record(step: int, value: float = 0.5, width: int = 200) -> Record:
    """A record of ``step`` with the score ``value`` and a histogram that makes its line long enough to cut."""
    return Record(step, scalars={SCORE: value}, histograms={"regimescope/h": [float(i) for i in range(width)]})
