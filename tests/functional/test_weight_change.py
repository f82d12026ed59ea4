"""Per-parameter weight change against the float64 formula, and its pooling over groups of parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.capture import Snapshot
from regimescope.functional.weight_change import pooled_change, squared_change
from tests.reference import formulas as ref


def _weights(seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = {"a.weight": (7, 5), "a.bias": (7,), "b.weight": (3, 7, 2, 2)}
    return {name: torch.randn(shape, generator=generator, dtype=dtype) for name, shape in shapes.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1e-6, 1e-2, 1.0])
def test_pooled_change_matches_the_float64_formula(dtype: torch.dtype, scale: float) -> None:
    start = _weights(0, dtype)
    now = {name: w + scale * noise for (name, w), noise in zip(start.items(), _weights(1, dtype).values())}
    squares = squared_change(now, start)
    for names in (["a.weight"], ["a.weight", "a.bias"], list(start)):
        moved, size = pooled_change(squares, names)
        expected = ref.weight_change([ref.as_array(now[n]) for n in names], [ref.as_array(start[n]) for n in names])
        assert moved / size == pytest.approx(expected, rel=1e-9 if dtype == torch.float64 else 1e-6)
        assert size == pytest.approx(np.sqrt(sum(np.sum(ref.as_array(start[n]) ** 2) for n in names)), rel=1e-12)


def test_a_missing_parameter_gives_no_pooled_change() -> None:
    start = _weights(0)
    now = {name: w for name, w in start.items() if name != "a.bias"}
    squares = squared_change(now, start)
    assert set(squares) == {"a.weight", "b.weight"}
    assert pooled_change(squares, ["a.weight", "a.bias"]) is None
    assert pooled_change(squares, ["a.weight"]) == (0.0, pytest.approx(float(start["a.weight"].double().norm())))


def test_a_snapshot_computes_it_once_per_reference() -> None:
    init, other = Snapshot(0, weights=_weights(0)), Snapshot(3, weights=_weights(2))
    now = Snapshot(5, weights=_weights(1))
    first = now.squared_change(init)
    assert now.squared_change(init) is first
    against_other = now.squared_change(other)
    assert against_other is not first
    assert against_other == squared_change(now.weights, other.weights)
    assert now.squared_change(init) == first
