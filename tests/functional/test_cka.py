"""linear_cka against the float64 formula of theory.md 5.5, both computation branches, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.functional import linear_cka
from tests.reference import formulas as ref

# (n, d1, d2): feature space (d < n), Gram space (d > n) and mixed.
SHAPES = [(20, 3, 5), (20, 20, 20), (8, 30, 50), (8, 3, 40), (40, 12, 1)]


def _pair(n: int, d1: int, d2: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d1))
    y = x[:, :1] @ rng.standard_normal((1, d2)) + rng.standard_normal((n, d2))  # related, so CKA is not ~0
    return x, y


def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def _cka(x: np.ndarray, y: np.ndarray) -> float:
    return float(linear_cka(torch.from_numpy(x), torch.from_numpy(y)))


@pytest.mark.parametrize(("n", "d1", "d2"), SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference(n: int, d1: int, d2: int, seed: int) -> None:
    x, y = _pair(n, d1, d2, seed)
    value = _cka(x, y)
    assert value == pytest.approx(ref.linear_cka(x, y), rel=1e-10)
    assert 0.0 <= value <= 1.0 + 1e-12


def test_gram_and_feature_branches_agree() -> None:
    """Zero columns change nothing mathematically but push the feature dimension past n (Gram branch)."""
    x, y = _pair(10, 4, 6, 3)
    padded = np.concatenate([x, np.zeros((10, 20))], axis=1)
    assert _cka(padded, y) == pytest.approx(_cka(x, y), rel=1e-12)
    assert _cka(y, padded) == pytest.approx(_cka(x, y), rel=1e-12)


@pytest.mark.parametrize(("n", "d1", "d2"), SHAPES)
def test_is_symmetric(n: int, d1: int, d2: int) -> None:
    x, y = _pair(n, d1, d2, 4)
    assert _cka(x, y) == pytest.approx(_cka(y, x), rel=1e-12)


@pytest.mark.parametrize(("n", "d"), [(15, 4), (6, 9)])
def test_is_one_for_identical_inputs(n: int, d: int) -> None:
    x = np.random.default_rng(5).standard_normal((n, d))
    assert _cka(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("n", "d1", "d2"), SHAPES)
def test_invariant_to_orthogonal_maps_isotropic_scaling_and_translation(n: int, d1: int, d2: int) -> None:
    x, y = _pair(n, d1, d2, 6)
    base = _cka(x, y)
    rng = np.random.default_rng(6)
    assert _cka(x @ _orthogonal(d1, 7), y) == pytest.approx(base, rel=1e-10)
    assert _cka(x, y @ _orthogonal(d2, 8)) == pytest.approx(base, rel=1e-10)
    assert _cka(0.01 * x, y) == pytest.approx(base, rel=1e-10)
    assert _cka(x, 300.0 * y) == pytest.approx(base, rel=1e-10)
    assert _cka(x + rng.standard_normal(d1), y - 5.0) == pytest.approx(base, rel=1e-10)


def test_is_not_invariant_to_anisotropic_scaling() -> None:
    """Guards the invariance tests: the formula does see non-orthogonal maps."""
    x, y = _pair(30, 4, 4, 9)
    stretch = np.diag([10.0, 1.0, 1.0, 0.1])
    assert abs(_cka(x @ stretch, y) - _cka(x, y)) > 1e-2


def test_trailing_dimensions_are_flattened() -> None:
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((6, 2, 3, 3)), rng.standard_normal((6, 5))
    assert _cka(x, y) == pytest.approx(ref.linear_cka(x.reshape(6, -1), y), rel=1e-10)


def test_constant_representation_gives_zero() -> None:
    x = np.random.default_rng(11).standard_normal((5, 3))
    assert _cka(np.ones((5, 3)), x) == 0.0


def test_float32_inputs_give_float64() -> None:
    value = linear_cka(torch.randn(5, 3), torch.randn(5, 2))
    assert value.dtype == torch.float64 and value.shape == ()


def test_different_example_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="same examples.*5 and 6"):
        linear_cka(torch.zeros(5, 2), torch.zeros(6, 2))
