"""statistics_shift against the squared Hellinger distance integrated numerically in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.functional.statistics_shift import statistics_shift


def _hellinger_by_quadrature(m_a: float, v_a: float, m_b: float, v_b: float) -> float:
    """``1 - integral sqrt(p q) dx`` of two normal densities, by the trapezoid rule on a fine grid."""
    spread = 12 * np.sqrt(max(v_a, v_b))
    x = np.linspace(min(m_a, m_b) - spread, max(m_a, m_b) + spread, 400_001)
    p = np.exp(-((x - m_a) ** 2) / (2 * v_a)) / np.sqrt(2 * np.pi * v_a)
    q = np.exp(-((x - m_b) ** 2) / (2 * v_b)) / np.sqrt(2 * np.pi * v_b)
    return 1.0 - np.trapezoid(np.sqrt(p * q), x)


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_integrated_squared_hellinger_distance_per_channel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mean_a, mean_b = rng.normal(0, 2, 5), rng.normal(0, 2, 5)
    var_a, var_b = np.exp(rng.normal(0, 1.5, 5)), np.exp(rng.normal(0, 1.5, 5))
    expected = np.mean([_hellinger_by_quadrature(*args) for args in zip(mean_a, var_a, mean_b, var_b)])
    value = statistics_shift(*(torch.from_numpy(a) for a in (mean_a, var_a, mean_b, var_b)))
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(expected, abs=1e-9)


def test_is_zero_for_equal_statistics_symmetric_and_below_one() -> None:
    mean, var = torch.tensor([0.3, -2.0]), torch.tensor([0.5, 4.0])
    assert float(statistics_shift(mean, var, mean, var)) == pytest.approx(0.0, abs=1e-15)
    other_mean, other_var = torch.tensor([5.0, 1.0]), torch.tensor([0.01, 9.0])
    forward = float(statistics_shift(mean, var, other_mean, other_var))
    assert forward == pytest.approx(float(statistics_shift(other_mean, other_var, mean, var)), rel=1e-14)
    assert 0.0 < forward < 1.0
    far = statistics_shift(torch.tensor([0.0]), torch.tensor([1e-4]), torch.tensor([1e3]), torch.tensor([1e-4]))
    assert float(far) == pytest.approx(1.0, abs=1e-12)


def test_is_invariant_to_a_common_change_of_units() -> None:
    values = ([0.2, 1.0], [1.0, 0.3], [-0.5, 0.0], [2.0, 0.1])
    args = [torch.tensor(v, dtype=torch.float64) for v in values]
    scaled = [args[0] * 7 + 3, args[1] * 49, args[2] * 7 + 3, args[3] * 49]
    assert float(statistics_shift(*scaled)) == pytest.approx(float(statistics_shift(*args)), rel=1e-12)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"share one shape.*\(2,\).*\(3,\)"):
        statistics_shift(torch.zeros(2), torch.ones(2), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="positive.*eps"):
        statistics_shift(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.ones(2))
