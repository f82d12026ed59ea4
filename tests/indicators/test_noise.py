"""The probe-half noise each kernel indicator writes: zero without sampling spread, the half-spread formula
otherwise, smoothed over a window, absent on tiny probes, and resumed with the indicator's state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture.snapshot import Snapshot
from regimescope.functional import kernel_distance
from regimescope.indicators.base import Context, Indicator
from regimescope.indicators.kernel_distance import KernelDistance
from regimescope.indicators.kernel_scale import KernelScale
from regimescope.indicators.kernel_velocity import KernelVelocity
from regimescope.indicators.layer_kernels import LayerKernels
from regimescope.indicators.noise import NoiseWindow, halves_spread
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


def test_noise_is_zero_when_the_kernel_only_rescales() -> None:
    k0 = _gram(0)
    assert _noise(KernelDistance(), _snapshot(10, 3 * k0), _snapshot(0, k0))[DISTANCE] == pytest.approx(0, abs=1e-12)
    assert _noise(KernelScale(), _snapshot(10, 3 * k0), _snapshot(0, k0))[CHANGE] == pytest.approx(0, abs=1e-12)
    assert _noise(KernelVelocity(), _snapshot(10, 3 * k0), _snapshot(5, 2 * k0))[VELOCITY] == pytest.approx(0, abs=1e-7)


def test_noise_is_half_the_spread_between_even_and_odd_examples() -> None:
    k0, kt = _gram(0), _gram(1)
    even, odd = torch.arange(0, 8, 2), torch.arange(1, 8, 2)
    halves = [float(kernel_distance(k0[h][:, h], kt[h][:, h])) for h in (even, odd)]
    expected = abs(halves[0] - halves[1]) / 2
    assert _noise(KernelDistance(), _snapshot(10, kt), _snapshot(0, k0))[DISTANCE] == pytest.approx(expected)
    per_layer = _noise(LayerKernels(), _snapshot(10, kt), _snapshot(0, k0))
    assert per_layer[f"{DISTANCE}/fc"] == pytest.approx(expected)
    assert halves_spread(kernel_distance, k0, kt) == pytest.approx(expected)


def test_velocity_noise_is_per_step_and_absent_at_the_first_measurement() -> None:
    k0, kt = _gram(0), _gram(1)
    angle = halves_spread(rs.kernel_angle, k0, kt)
    assert _noise(KernelVelocity(), _snapshot(14, kt), _snapshot(10, k0))[VELOCITY] == pytest.approx(angle / 4)
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
    assert halves_spread(kernel_distance, _gram(1, n=3), _gram(0, n=3)) is None
    with pytest.raises(ValueError, match="positive number of measurements"):
        NoiseWindow(window=0)


def test_noise_tags_live_under_the_noise_family_and_read_back() -> None:
    tag = "regimescope/kernel/distance_from_init/fc1"
    assert noise_tag(tag) == "regimescope/noise/kernel/distance_from_init/fc1"
    assert noise_of({noise_tag(tag): 0.5, tag: 0.1}) == {tag: 0.5}
