"""Where a diagram changes side: interpolated crossings along one knob."""

from __future__ import annotations

import math

import pytest

from regimescope.sweep import FORECAST_BOUNDARY, crossings, forecast_boundary, measured_boundary


def _rows() -> list[dict]:
    scores = {(0.1, "a"): 1.0, (1.0, "a"): 0.6, (10.0, "a"): 0.2, (0.1, "b"): 0.9, (1.0, "b"): 0.8, (10.0, "b"): 0.7}
    ratios = {0.1: 10.0, 1.0: 0.1, 10.0: 0.001}
    return [
        {"scale": s, "kind": k, "score": v, "forecast_ratio": ratios[s], "error": None} for (s, k), v in scores.items()
    ]


def test_crossings_interpolate_in_log_knob_and_optionally_log_metric() -> None:
    rows = _rows()
    assert measured_boundary(rows, "scale", {"kind": "a"}) == [pytest.approx(10**0.25)]
    assert measured_boundary(rows, "scale", {"kind": "b"}) == []
    expected = 10 ** (math.log10(0.1 / FORECAST_BOUNDARY) / 2)
    assert forecast_boundary(rows, "scale", {"kind": "a"}) == [pytest.approx(expected)]


def test_failed_points_are_skipped_and_a_linear_knob_interpolates_linearly() -> None:
    rows = [
        {"x": -1.0, "score": 0.0, "error": None},
        {"x": 0.0, "score": None, "error": "boom"},
        {"x": 1.0, "score": 1.0, "error": None},
    ]
    assert crossings(rows, "x", "score", 0.25) == [pytest.approx(-0.5)]
    rows[1] = {"x": 0.0, "score": 0.75, "error": "boom"}
    assert crossings(rows, "x", "score", 0.25) == [pytest.approx(-0.5)]
