"""The noise each kernel indicator writes: the jackknife over probe examples (zero without sampling spread, equal to
an explicit leave-one-out with the functional definitions), the output projection's halves, both in quadrature,
smoothed over a window, absent on tiny probes, and resumed with the indicator's state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture.snapshot import Snapshot
from regimescope.functional import kernel_angle, kernel_distance, relative_change
from regimescope.indicators.base import Context, Indicator
from regimescope.indicators.kernel_distance import KernelDistance
from regimescope.indicators.kernel_scale import KernelScale
from regimescope.indicators.kernel_velocity import KernelVelocity
from regimescope.indicators.layer_kernels import LayerKernels
from regimescope.indicators.noise import (
    NoiseWindow,
    angle,
    change,
    distance,
    halves_spread,
    jackknife_error,
    products,
)
from regimescope.tags import noise_of, noise_tag

DISTANCE = "regimescope/noise/kernel/distance_from_init"
CHANGE = "regimescope/noise/kernel/relative_change"
VELOCITY = "regimescope/noise/kernel/velocity"


def _snapshot(step: int, kernel: torch.Tensor) -> Snapshot:
    return Snapshot(step=step, layer_kernels={"fc": kernel})


def _gram(seed: int, n: int = 8, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 5, generator=g, dtype=torch.float64) * scale
    return features @ features.T


def _noise(indicator: Indicator, current: Snapshot, reference: Snapshot | None) -> dict[str, float]:
    context = Context(model=nn.Linear(2, 1), probe=rs.Probe(torch.randn(current.kernel.shape[0], 2)))
    record = indicator.compute(current, reference, context)
    return {name: value for name, value in record.scalars.items() if name.startswith("regimescope/noise/")}


def _explicit_jackknife(fn, a: torch.Tensor, b: torch.Tensor) -> float:
    """The jackknife from the functional definitions on each leave-one-out pair of kernels (the slow reference)."""
    n = a.shape[0]
    values = []
    for i in range(n):
        keep = torch.tensor([j for j in range(n) if j != i])
        values.append(float(fn(a[keep][:, keep], b[keep][:, keep])))
    v = torch.tensor(values, dtype=torch.float64)
    return float(torch.sqrt((n - 1) / n * (v - v.mean()).square().sum()))


def test_noise_is_zero_when_the_kernel_only_rescales() -> None:
    k0 = _gram(0)
    assert _noise(KernelDistance(), _snapshot(10, 3 * k0), _snapshot(0, k0))[DISTANCE] == pytest.approx(0, abs=1e-7)
    assert _noise(KernelScale(), _snapshot(10, 3 * k0), _snapshot(0, k0))[CHANGE] == pytest.approx(0, abs=1e-9)
    assert _noise(KernelVelocity(), _snapshot(10, 3 * k0), _snapshot(5, 2 * k0))[VELOCITY] == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize(
    ("statistic", "reference_fn"),
    [(distance, kernel_distance), (angle, kernel_angle), (change, lambda a, b: relative_change(b, a))],
    ids=["distance", "angle", "change"],
)
def test_the_jackknife_matches_an_explicit_leave_one_out(statistic, reference_fn) -> None:
    k0, kt = _gram(0), _gram(1)
    assert float(statistic(products(k0, kt))) == pytest.approx(float(reference_fn(k0, kt)), rel=1e-12)
    assert jackknife_error(statistic, k0, kt) == pytest.approx(_explicit_jackknife(reference_fn, k0, kt), rel=1e-9)


def test_indicators_write_the_jackknife_of_their_quantity() -> None:
    k0, kt = _gram(0), _gram(1)
    expected = _explicit_jackknife(kernel_distance, k0, kt)
    assert _noise(KernelDistance(), _snapshot(10, kt), _snapshot(0, k0))[DISTANCE] == pytest.approx(expected)
    assert _noise(LayerKernels(), _snapshot(10, kt), _snapshot(0, k0))[f"{DISTANCE}/fc"] == pytest.approx(expected)


def test_a_projection_adds_the_spread_of_its_halves_in_quadrature() -> None:
    k0, kt = _gram(0), _gram(1)
    halves_0, halves_t = torch.stack([k0, _gram(2)]), torch.stack([kt, _gram(3)])
    current = Snapshot(step=10, layer_kernels={"fc": kt}, layer_kernel_halves={"fc": halves_t})
    start = Snapshot(step=0, layer_kernels={"fc": k0}, layer_kernel_halves={"fc": halves_0})
    spread = abs(float(kernel_distance(k0, kt)) - float(kernel_distance(_gram(2), _gram(3)))) / 2
    assert halves_spread(distance, halves_0, halves_t) == pytest.approx(spread)
    probe_part = jackknife_error(distance, k0, kt)
    assert _noise(KernelDistance(), current, start)[DISTANCE] == pytest.approx(math.sqrt(probe_part**2 + spread**2))


def test_velocity_noise_is_per_step_and_absent_at_the_first_measurement() -> None:
    k0, kt = _gram(0), _gram(1)
    error = jackknife_error(angle, k0, kt)
    assert _noise(KernelVelocity(), _snapshot(14, kt), _snapshot(10, k0))[VELOCITY] == pytest.approx(error / 4)
    assert _noise(KernelVelocity(), _snapshot(0, k0), None) == {}


def test_noise_is_the_rms_over_the_window() -> None:
    smoothed = KernelScale(window=2)
    k0 = _gram(0)
    raw = []
    for step, seed in ((1, 1), (2, 2), (3, 3)):
        raw.append(_noise(KernelScale(), _snapshot(step, _gram(seed)), _snapshot(0, k0))[CHANGE])
        last = _noise(smoothed, _snapshot(step, _gram(seed)), _snapshot(0, k0))[CHANGE]
    assert last == pytest.approx(math.sqrt((raw[1] ** 2 + raw[2] ** 2) / 2))


def test_the_window_is_resumed_with_the_indicator_state() -> None:
    k0 = _gram(0)
    first, resumed, uninterrupted = KernelDistance(), KernelDistance(), KernelDistance()
    for step in (1, 2):
        _noise(first, _snapshot(step, _gram(step)), _snapshot(0, k0))
        _noise(uninterrupted, _snapshot(step, _gram(step)), _snapshot(0, k0))
    resumed.load_state_dict(first.state_dict())
    after = _noise(resumed, _snapshot(3, _gram(3)), _snapshot(0, k0))
    assert after == _noise(uninterrupted, _snapshot(3, _gram(3)), _snapshot(0, k0))


def test_no_estimate_on_tiny_probes() -> None:
    assert _noise(KernelDistance(), _snapshot(1, _gram(0, n=3)), _snapshot(0, _gram(1, n=3))) == {}
    assert jackknife_error(distance, _gram(1, n=3), _gram(0, n=3)) is None
    with pytest.raises(ValueError, match="positive number of measurements"):
        NoiseWindow(window=0)


def test_noise_tags_live_under_the_noise_family_and_read_back() -> None:
    tag = "regimescope/kernel/distance_from_init/fc1"
    assert noise_tag(tag) == "regimescope/noise/kernel/distance_from_init/fc1"
    assert noise_of({noise_tag(tag): 0.5, tag: 0.1}) == {tag: 0.5}
