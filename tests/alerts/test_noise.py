"""The probe-half noise estimate: zero without sampling spread, the half-spread formula otherwise, smoothed."""

from __future__ import annotations

import math

import pytest
import torch

from regimescope.alerts import ProbeHalfNoise, noise_tag
from regimescope.capture.snapshot import Snapshot
from regimescope.functional import kernel_distance


def _snapshot(step: int, kernel: torch.Tensor) -> Snapshot:
    return Snapshot(step=step, layer_kernels={"fc": kernel})


def _gram(seed: int, n: int = 8, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 5, generator=g, dtype=torch.float64) * scale
    return features @ features.T


def test_noise_is_zero_when_the_kernel_only_rescales() -> None:
    k0 = _gram(0)
    noise = ProbeHalfNoise().estimate(_snapshot(10, 3 * k0), _snapshot(0, k0), _snapshot(5, 2 * k0))
    assert noise["regimescope/kernel/distance_from_init"] == pytest.approx(0, abs=1e-12)
    assert noise["regimescope/kernel/velocity"] == pytest.approx(0, abs=1e-7)
    assert noise["regimescope/kernel/relative_change"] == pytest.approx(0, abs=1e-12)


def test_noise_is_half_the_spread_between_even_and_odd_examples() -> None:
    k0, kt = _gram(0), _gram(1)
    even, odd = torch.arange(0, 8, 2), torch.arange(1, 8, 2)
    halves = [float(kernel_distance(k0[h][:, h], kt[h][:, h])) for h in (even, odd)]
    noise = ProbeHalfNoise().estimate(_snapshot(10, kt), _snapshot(0, k0), None)
    assert noise["regimescope/kernel/distance_from_init"] == pytest.approx(abs(halves[0] - halves[1]) / 2)
    assert noise["regimescope/kernel/distance_from_init/fc"] == pytest.approx(abs(halves[0] - halves[1]) / 2)
    assert "regimescope/kernel/velocity" not in noise


def test_noise_is_the_rms_over_the_window() -> None:
    estimator = ProbeHalfNoise(window=2)
    k0 = _gram(0)
    raw = []
    for step, seed in ((1, 1), (2, 2), (3, 3)):
        raw.append(
            ProbeHalfNoise().estimate(_snapshot(step, _gram(seed)), _snapshot(0, k0), None)[
                "regimescope/kernel/relative_change"
            ]
        )
        smoothed = estimator.estimate(_snapshot(step, _gram(seed)), _snapshot(0, k0), None)[
            "regimescope/kernel/relative_change"
        ]
    assert smoothed == pytest.approx(math.sqrt((raw[1] ** 2 + raw[2] ** 2) / 2))


def test_no_estimate_without_kernels_or_with_tiny_probes() -> None:
    assert ProbeHalfNoise().estimate(Snapshot(step=1), None, None) == {}
    assert ProbeHalfNoise().estimate(_snapshot(1, _gram(0, n=3)), _snapshot(0, _gram(1, n=3)), None) == {}
    with pytest.raises(ValueError, match="positive number of measurements"):
        ProbeHalfNoise(window=0)


def test_noise_tags_live_under_the_noise_family() -> None:
    assert noise_tag("regimescope/kernel/distance_from_init/fc1") == "regimescope/noise/kernel/distance_from_init/fc1"
