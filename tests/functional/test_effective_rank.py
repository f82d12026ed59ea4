"""effective_rank against the float64 formula of theory.md 5.6, and its known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.functional import effective_rank
from tests.reference import formulas as ref


def _with_singular_values(sigma: list[float], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.zeros(n)
    s[: len(sigma)] = sigma
    return u @ np.diag(s) @ v.T


@pytest.mark.parametrize(("n", "rank", "seed"), [(3, 1, 0), (8, 3, 1), (8, 8, 2), (20, 5, 3), (20, 40, 4)])
def test_matches_reference(n: int, rank: int, seed: int) -> None:
    k = ref.random_psd(n, rank, seed)
    assert float(effective_rank(torch.from_numpy(k))) == pytest.approx(ref.effective_rank(k), rel=1e-9)


def test_matches_reference_for_a_non_square_matrix() -> None:
    m = np.random.default_rng(5).standard_normal((4, 7))
    assert float(effective_rank(torch.from_numpy(m))) == pytest.approx(ref.effective_rank(m), rel=1e-9)


@pytest.mark.parametrize(("n", "r"), [(5, 1), (6, 2), (10, 4), (10, 10)])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 50.0])
def test_equals_r_for_r_equal_singular_values(n: int, r: int, scale: float) -> None:
    k = _with_singular_values([scale] * r, n, seed=n + r)
    assert float(effective_rank(torch.from_numpy(k))) == pytest.approx(r, rel=1e-8)


def test_rank_one_and_identity() -> None:
    u = torch.randn(9, 1, dtype=torch.float64)
    assert float(effective_rank(u @ u.T)) == pytest.approx(1.0, rel=1e-8)
    assert float(effective_rank(torch.eye(9))) == pytest.approx(9.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_is_between_one_and_n(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sigma = list(rng.exponential(size=7) ** 3)
    value = float(effective_rank(torch.from_numpy(_with_singular_values(sigma, 7, seed))))
    assert 1.0 - 1e-9 <= value <= 7.0 + 1e-9


def test_unequal_spectrum_is_below_its_rank() -> None:
    k = _with_singular_values([10.0, 1.0, 0.1], 6, seed=7)
    value = float(effective_rank(torch.from_numpy(k)))
    assert 1.0 < value < 3.0
    assert value == pytest.approx(ref.effective_rank(k), rel=1e-9)


def test_zero_matrix_gives_zero() -> None:
    assert float(effective_rank(torch.zeros(3, 3))) == 0.0


def test_non_matrix_is_rejected_with_its_shape() -> None:
    with pytest.raises(ValueError, match=r"matrix.*\(2, 3, 3\)"):
        effective_rank(torch.zeros(2, 3, 3))
