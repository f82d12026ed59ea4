"""kernel_distance, relative_change, norm_ratio and kernel_angle against the float64 formulas of theory.md 5.1-5.3."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from regimescope.functional import kernel_angle, kernel_distance, norm_ratio, relative_change
from tests.reference import formulas as ref

CASES = [(n, rank, seed) for n in (2, 5, 16) for rank in (1, 3, 20) for seed in (0, 1)]


def _pair(n: int, rank: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(ref.random_psd(n, rank, seed)), torch.from_numpy(ref.random_psd(n, rank, seed + 100))


@pytest.mark.parametrize(("n", "rank", "seed"), CASES)
def test_matches_reference_formulas(n: int, rank: int, seed: int) -> None:
    a, b = _pair(n, rank, seed)
    na, nb = a.numpy(), b.numpy()
    assert float(kernel_distance(a, b)) == pytest.approx(ref.kernel_distance(na, nb), rel=1e-10, abs=1e-12)
    assert float(relative_change(a, b)) == pytest.approx(ref.relative_change(na, nb), rel=1e-10)
    assert float(norm_ratio(a, b)) == pytest.approx(ref.norm_ratio(na, nb), rel=1e-10)
    assert float(kernel_angle(a, b)) == pytest.approx(ref.kernel_angle(na, nb), rel=1e-9, abs=1e-9)


def test_returns_float64_scalars_for_float32_inputs() -> None:
    a, b = (k.float() for k in _pair(6, 3, 0))
    for fn in (kernel_distance, relative_change, norm_ratio, kernel_angle):
        value = fn(a, b)
        assert value.shape == ()
        assert value.dtype == torch.float64


@pytest.mark.parametrize("c", [1e-6, 0.3, 1.0, 7.0, 1e5])
def test_distance_is_zero_for_positive_multiples(c: float) -> None:
    k = torch.from_numpy(ref.random_psd(8, 4, 3))
    assert float(kernel_distance(k, c * k)) == pytest.approx(0.0, abs=1e-12)
    assert float(kernel_angle(k, c * k)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(("n", "rank", "seed"), CASES)
def test_distance_is_symmetric_and_within_unit_interval_for_psd(n: int, rank: int, seed: int) -> None:
    a, b = _pair(n, rank, seed)
    s_ab, s_ba = float(kernel_distance(a, b)), float(kernel_distance(b, a))
    assert s_ab == pytest.approx(s_ba, rel=1e-12, abs=1e-15)
    assert 0.0 <= s_ab <= 1.0


def test_distance_is_one_for_kernels_with_orthogonal_ranges() -> None:
    u, v = torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
    u[0], v[1] = 2.0, 3.0
    assert float(kernel_distance(u @ u.T, v @ v.T)) == pytest.approx(1.0, abs=1e-15)
    assert float(kernel_angle(u @ u.T, v @ v.T)) == pytest.approx(math.pi / 2, abs=1e-12)


def test_distance_is_blind_to_scale_and_norm_ratio_is_not() -> None:
    a, b = _pair(7, 3, 5)
    assert float(kernel_distance(3.0 * a, 0.2 * b)) == pytest.approx(float(kernel_distance(a, b)), rel=1e-10)
    assert float(norm_ratio(3.0 * a, 0.2 * b)) == pytest.approx(15.0 * float(norm_ratio(a, b)), rel=1e-10)


@pytest.mark.parametrize("c", [0.0, 0.5, 1.0, 4.0, 100.0])
def test_relative_change_and_norm_ratio_of_a_rescaled_kernel(c: float) -> None:
    k = torch.from_numpy(ref.random_psd(6, 6, 2))
    assert float(relative_change(c * k, k)) == pytest.approx(abs(c - 1.0), abs=1e-12)
    assert float(norm_ratio(c * k, k)) == pytest.approx(c, abs=1e-12)


def test_relative_change_is_invariant_to_a_common_scale() -> None:
    a, b = _pair(9, 2, 7)
    assert float(relative_change(5.0 * a, 5.0 * b)) == pytest.approx(float(relative_change(a, b)), rel=1e-12)
    assert float(norm_ratio(5.0 * a, 5.0 * b)) == pytest.approx(float(norm_ratio(a, b)), rel=1e-12)


def test_zero_reference_kernel() -> None:
    k, zero = torch.eye(3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64)
    assert math.isinf(float(relative_change(k, zero)))
    assert math.isinf(float(norm_ratio(k, zero)))
    assert float(relative_change(zero, zero)) == 0.0
    assert float(norm_ratio(zero, zero)) == 1.0
    assert float(kernel_distance(k, zero)) == 0.0


def test_small_change_distance_is_quadratic_and_angle_linear() -> None:
    """Theory 5.1 and 5.3: S ~ 1/2 |dK_perp|^2 / |K|^2 while the angle is first order."""
    k = torch.from_numpy(ref.random_psd(8, 8, 11))
    e = torch.from_numpy(ref.random_psd(8, 8, 12))
    e_perp = e - (k * e).sum() / (k * k).sum() * k
    eps = 1e-3
    s1, s2 = float(kernel_distance(k, k + eps * e_perp)), float(kernel_distance(k, k + 0.5 * eps * e_perp))
    a1, a2 = float(kernel_angle(k, k + eps * e_perp)), float(kernel_angle(k, k + 0.5 * eps * e_perp))
    assert s1 / s2 == pytest.approx(4.0, rel=1e-2)
    assert a1 / a2 == pytest.approx(2.0, rel=1e-2)
    expected = 0.5 * float((eps * e_perp).norm() ** 2 / k.norm() ** 2)
    assert s1 == pytest.approx(expected, rel=1e-2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_angle_is_arccos_of_one_minus_distance(seed: int) -> None:
    a, b = _pair(5, 2, seed)
    assert float(kernel_angle(a, b)) == pytest.approx(float(np.arccos(1.0 - float(kernel_distance(a, b)))), rel=1e-12)


Pairwise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@pytest.mark.parametrize("fn", [kernel_distance, relative_change, norm_ratio, kernel_angle])
def test_mismatched_shapes_are_rejected_with_both_shapes(fn: Pairwise) -> None:
    with pytest.raises(ValueError, match=r"same shape.*\(3, 3\).*\(4, 4\)"):
        fn(torch.eye(3), torch.eye(4))


def test_negated_kernel_is_refused_instead_of_reaching_two() -> None:
    k = torch.from_numpy(ref.random_psd(6, 3, 4))
    with pytest.raises(ValueError, match=r"positive semi-definite.*`k_b` has a negative diagonal entry"):
        kernel_distance(k, -k)
    with pytest.raises(ValueError, match="`k_a` has a negative diagonal entry"):
        kernel_angle(-k, k)


def test_full_kernels_are_checked_on_their_output_diagonal() -> None:
    jacobian = torch.randn(4, 2, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = torch.einsum("iap,jbp->ijab", jacobian, jacobian)  # (n, n, k, k), PSD
    assert 0.0 <= float(kernel_distance(full, 2.0 * full)) <= 1e-12
    with pytest.raises(ValueError, match="negative diagonal"):
        kernel_distance(full, -full)


def test_negative_inner_product_is_refused_even_with_a_positive_diagonal() -> None:
    """[[1, -3], [-3, 1]] and [[1, 3], [3, 1]] (eigenvalues 4 and -2 each) have unit diagonals, but
    <B, C>_F = -16 gives S = 1 + 16 / 20 = 1.8, impossible for PSD kernels."""
    b = torch.tensor([[1.0, -3.0], [-3.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([[1.0, 3.0], [3.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"negative \(S = 1.8 > 1\)"):
        kernel_distance(b, c)
    # A non-PSD matrix that passes both necessary checks is clamped into [0, 1] (documented: not a full PSD test).
    assert 0.0 <= float(kernel_distance(b, torch.eye(2, dtype=torch.float64))) <= 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rounding_below_the_tolerance_is_accepted_and_clamped(dtype: torch.dtype) -> None:
    u = torch.zeros(3, 1, dtype=dtype)
    v = torch.zeros(3, 1, dtype=dtype)
    u[0], v[1] = 1.0, 1.0
    a = u @ u.T
    b = v @ v.T
    b[2, 2] = -1e-12  # a rounding-level negative diagonal entry, as a float32 kernel of a dead sample can have
    b[0, 0] = -1e-12
    value = float(kernel_distance(a, b))
    assert value == 1.0
