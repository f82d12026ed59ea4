"""The grid: validation, the points in order, their names, and values from the command line."""

from __future__ import annotations

import pytest

from regimescope.sweep import parse_grid, parse_values, point_name, points


def test_points_vary_the_last_knob_fastest_and_have_stable_names() -> None:
    axes = parse_grid({"init_scale": [0.1, 1.0], "parametrisation": ["ntk", "mup"]})
    assert points(axes) == [
        {"init_scale": 0.1, "parametrisation": "ntk"},
        {"init_scale": 0.1, "parametrisation": "mup"},
        {"init_scale": 1.0, "parametrisation": "ntk"},
        {"init_scale": 1.0, "parametrisation": "mup"},
    ]
    assert (
        point_name({"init_scale": 0.1, "width": 64, "parametrisation": "mup"})
        == "init_scale=0.1,width=64,parametrisation=mup"
    )
    assert axes[0].numeric and not axes[1].numeric
    assert parse_grid({"lr": [3, 0.01, 0.1]})[0].ordered() == (0.01, 0.1, 3)
    assert axes[1].ordered() == ("ntk", "mup")


@pytest.mark.parametrize(
    "grid, message",
    [
        ({}, "map knob names"),
        ({"a": [1], "b": [1], "c": [1], "d": [1]}, "at most 3"),
        ({"a": []}, "non-empty list"),
        ({"a": "0.1,1"}, "non-empty list"),
        ({"a": [1, 1]}, "repeats"),
        ({"a": [float("nan")]}, "finite numbers or strings"),
        ({"a": [None]}, "finite numbers or strings"),
    ],
)
def test_bad_grids_are_refused_with_what_was_expected(grid, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_grid(grid)


def test_command_line_values_are_numbers_strings_or_log_ranges() -> None:
    assert parse_values("0.1,1,10") == [0.1, 1, 10]
    assert parse_values("ntk, mup") == ["ntk", "mup"]
    assert parse_values("0.01:1:3") == [0.01, 0.1, 1.0]
    for bad in ("1,,2", "0:1:3", "1:2:x"):
        with pytest.raises(ValueError):
            parse_values(bad)
