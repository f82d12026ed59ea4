"""Scenario 4: output scale. Training ``alpha (f - f_0)`` on ``loss / alpha^2`` moves the parameters ``~ 1 / alpha``;
larger ``alpha`` is lazier (Chizat, Oyallon & Bach 2019)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from regimescope.scenarios.catalogue import output_scale_setup
from tests.theory._runs import monitored_run, start_and_end

ALPHAS = (3.0, 10.0, 30.0, 100.0)
TAGS = {
    "first": "regimescope/weights/relative_change/net.0",
    "second": "regimescope/weights/relative_change/net.2",
    "distance": "regimescope/kernel/distance_from_init",
    "change": "regimescope/kernel/relative_change",
    "score": "regimescope/regime/score",
}


@functools.cache
def _sweep() -> dict[str, np.ndarray]:
    finals = [monitored_run(output_scale_setup(alpha, 0.2, 300), schedule=start_and_end(300)) for alpha in ALPHAS]
    return {name: np.array([run.last(tag) for run in finals]) for name, tag in TAGS.items()}


@pytest.mark.slow
def test_relative_weight_change_falls_as_one_over_alpha() -> None:
    sweep = _sweep()
    for layer in ("first", "second"):
        slope = np.polyfit(np.log(ALPHAS), np.log(sweep[layer]), 1)[0]
        assert slope == pytest.approx(-1.0, abs=0.1), layer


@pytest.mark.slow
def test_larger_alpha_is_lazier() -> None:
    sweep = _sweep()
    for name in ("distance", "change"):
        assert np.all(np.diff(sweep[name]) < 0), name
    assert np.all(np.diff(sweep["score"]) <= 0)
    assert sweep["score"][-1] < 0.35 and sweep["distance"][-1] < 1e-5
