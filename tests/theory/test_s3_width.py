"""Scenario 3: width in the NTK parametrisation ``f = m^{-1/2} sum_k a_k sigma(w_k^T x / sqrt(d))``: wider is lazier.

Fitted log-log slopes over m = 256 ... 8192 (two seeds averaged), at a fixed training time: relative weight change
``~ m^{-1/2}`` in both layers, ReLU flip fraction ``~ m^{-1/2}``, tanh kernel distance ``~ m^{-2}`` and ReLU kernel
distance faster than ``m^{-1}``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from torch import nn

from regimescope.scenarios.catalogue import ntk_setup
from tests.theory._runs import monitored_run, start_and_end

WIDTHS = (256, 1024, 4096, 8192)
SEEDS = (0, 1)
TAGS = {
    "hidden": "regimescope/weights/relative_change/hidden",
    "readout": "regimescope/weights/relative_change/readout",
    "flips": "regimescope/activations/pattern_change/activation",
    "distance": "regimescope/kernel/distance_from_init",
    "score": "regimescope/regime/score",
}


@functools.cache
def _sweep(activation: str) -> dict[str, np.ndarray]:
    """``indicator -> mean final value per width``."""
    values: dict[str, list[float]] = {name: [] for name in TAGS}
    for width in WIDTHS:
        finals = []
        for seed in SEEDS:
            module = nn.ReLU() if activation == "relu" else nn.Tanh()
            setup = ntk_setup(width, module, seed=seed)
            run = monitored_run(setup, schedule=start_and_end(setup.steps))
            finals.append({name: run.last(tag) for name, tag in TAGS.items() if tag in run.sink.tags()})
        for name in finals[0]:
            values[name].append(float(np.mean([final[name] for final in finals])))
    return {name: np.array(series) for name, series in values.items() if series}


def _slope(values: np.ndarray) -> float:
    return float(np.polyfit(np.log(WIDTHS), np.log(values), 1)[0])


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_relative_weight_change_falls_as_inverse_square_root_of_width(activation: str) -> None:
    sweep = _sweep(activation)
    for layer in ("hidden", "readout"):
        assert _slope(sweep[layer]) == pytest.approx(-0.5, abs=0.08), layer


@pytest.mark.slow
def test_relu_flip_fraction_falls_as_inverse_square_root_of_width() -> None:
    assert _slope(_sweep("relu")["flips"]) == pytest.approx(-0.5, abs=0.08)


@pytest.mark.slow
def test_kernel_distance_falls_as_width_to_the_minus_two_for_tanh_and_faster_than_one_over_width_for_relu() -> None:
    assert _slope(_sweep("tanh")["distance"]) == pytest.approx(-2.0, abs=0.25)
    assert -2.0 < _slope(_sweep("relu")["distance"]) < -1.15


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_wider_is_lazier(activation: str) -> None:
    sweep = _sweep(activation)
    assert np.all(np.diff(sweep["distance"]) < 0)
    assert np.all(np.diff(sweep["score"]) <= 0) and sweep["score"][-1] < 0.35
