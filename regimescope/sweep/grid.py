"""The grid of a sweep: up to three knobs, each a list of values, and which of them the sweep applies itself."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_KNOBS = 3
"""A phase diagram shows at most three knobs (two axes and one row of panels per value of the third)."""

Value = Any
"""A knob value: a number or a string (e.g. a parametrisation)."""


@dataclass(frozen=True)
class Axis:
    """One knob of the grid.

    Attributes:
        name: The knob's name (a built-in knob of :mod:`regimescope.sweep.builtins`, or a factory argument).
        values: Its values, in the order given.
    """

    name: str
    values: tuple[Value, ...]

    @property
    def numeric(self) -> bool:
        """Whether every value is a real number (not a bool)."""
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)

    def ordered(self) -> tuple[Value, ...]:
        """The values sorted when numeric, else in the given order."""
        return tuple(sorted(self.values)) if self.numeric else self.values


def parse_grid(grid: Mapping[str, Sequence[Value]]) -> tuple[Axis, ...]:
    """Validate a grid ``{knob: [values]}``.

    Raises:
        ValueError: For no knob, more than :data:`MAX_KNOBS`, an empty or repeated value list, or a value that is
            neither a finite number nor a string.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            f"`grid` must map knob names to lists of values, e.g. {{'init_scale': [0.1, 1, 10]}}; received {grid!r}."
        )
    if len(grid) > MAX_KNOBS:
        raise ValueError(f"`grid` has {len(grid)} knobs ({list(grid)}); a phase diagram shows at most {MAX_KNOBS}.")
    axes = []
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"`grid[{name!r}]` must be a non-empty list of values; received {values!r}.")
        for value in values:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (isinstance(value, str) or (number and math.isfinite(value))):
                raise ValueError(f"`grid[{name!r}]` holds {value!r}; expected finite numbers or strings.")
        if len(set(values)) != len(values):
            raise ValueError(f"`grid[{name!r}]` repeats a value: {list(values)}.")
        axes.append(Axis(str(name), tuple(values)))
    return tuple(axes)


def points(axes: Sequence[Axis]) -> list[dict[str, Value]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    return [dict(zip((a.name for a in axes), combo)) for combo in itertools.product(*(a.values for a in axes))]


def point_name(values: Mapping[str, Value]) -> str:
    """A readable, stable name of a point: ``"init_scale=0.1,lr=0.01"``."""
    return ",".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}" for name, value in values.items()
    )


def parse_values(text: str) -> list[Value]:
    """Values from the command line: ``"0.1,1,10"``, ``"ntk,mup"``, or ``"0.01:10:7"`` (7 log-spaced values).

    Raises:
        ValueError: For an empty list or a malformed range.
    """
    if text.count(":") == 2 and "," not in text:
        low, high, count = text.split(":")
        try:
            low_f, high_f, n = float(low), float(high), int(count)
        except ValueError as error:
            raise ValueError(
                f"A range is LOW:HIGH:COUNT with positive numbers, e.g. 0.01:10:7; received {text!r}."
            ) from error
        if low_f <= 0 or high_f <= 0 or n < 2:
            raise ValueError(f"A range is LOW:HIGH:COUNT with LOW, HIGH > 0 and COUNT >= 2; received {text!r}.")
        ratio = (high_f / low_f) ** (1 / (n - 1))
        return [float(f"{low_f * ratio**i:.6g}") for i in range(n)]
    values: list[Value] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"Empty value in {text!r}; separate values with commas, e.g. 0.1,1,10.")
        try:
            values.append(int(item))
        except ValueError:
            try:
                values.append(float(item))
            except ValueError:
                values.append(item)
    return values
