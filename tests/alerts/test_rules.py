"""Each alert rule fires where it should, at the right step, and not on measurement noise; patience and cool-down."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regimescope.alerts import ConservationBroken, KernelJump, NonFinite, Observation, RegimeShift, Threshold
from tests.alerts._observations import run_rule, series, verdicts

VELOCITY = "regimescope/kernel/velocity"
DRIFT = "regimescope/balance_drift/fc1-fc2"
EXPLAINED = "regimescope/balance_explained/fc1-fc2"


def _noisy(level: float, spread: float, count: int, seed: int = 0) -> list[float]:
    """``count`` values ``level * (1 + spread * z)``, ``z`` standard normal: a quantity with only measurement noise."""
    rng = np.random.default_rng(seed)
    return [level * (1 + spread * float(z)) for z in rng.standard_normal(count)]


# ---------------------------------------------------------------------------------------------- regime shift
def test_regime_shift_fires_at_each_label_change_both_ways() -> None:
    alerts = run_rule(RegimeShift(), verdicts(["lazy", "lazy", "rich", "rich", "lazy"]))
    assert [(a.step, a.kind) for a in alerts] == [(20, "regime_shift"), (40, "regime_shift")]
    assert "lazy -> rich" in alerts[0].message and "rich -> lazy" in alerts[1].message
    assert alerts[0].value == pytest.approx(0.9) and alerts[0].reference == pytest.approx(0.1)
    assert "rich regime" in alerts[0].meaning


def test_regime_shift_patience_waits_and_reports_from_the_announced_label() -> None:
    alerts = run_rule(RegimeShift(patience=2), verdicts(["lazy", "transitional", "lazy", "rich", "rich", "rich"]))
    assert [a.step for a in alerts] == [40]
    assert "lazy -> rich" in alerts[0].message


def test_regime_shift_cooldown_silences_a_flickering_label() -> None:
    labels = ["lazy", "transitional", "lazy", "transitional", "lazy", "transitional", "lazy", "lazy", "transitional"]
    alerts = run_rule(RegimeShift(cooldown=5), verdicts(labels))
    steps = [(a.step, a.message.split(" (")[0]) for a in alerts]
    assert steps == [
        (10, "regime lazy -> transitional"),
        (20, "regime transitional -> lazy"),
        (80, "regime lazy -> transitional"),
    ]


def test_regime_shift_ignores_score_noise_within_a_label() -> None:
    scores = [min(max(s, 0.0), 0.34) for s in _noisy(0.2, 0.3, 40)]
    assert run_rule(RegimeShift(), verdicts(["lazy"] * 40, scores)) == []


# ----------------------------------------------------------------------------------------------- kernel jump
def test_kernel_jump_fires_at_the_spike_and_names_the_fastest_layer() -> None:
    values = [1e-3, 1.1e-3, 0.9e-3, 1.0e-3, 1.2e-2, 1.1e-3]
    layers = {
        "regimescope/kernel/distance_from_init/fc1": [0.01, 0.011, 0.012, 0.013, 0.05, 0.051],
        "regimescope/kernel/distance_from_init/fc2": [0.02, 0.021, 0.022, 0.023, 0.03, 0.031],
    }
    alerts = run_rule(KernelJump(), series(VELOCITY, values, noise=1e-4, extra=layers))
    assert [(a.step, a.kind, a.layer) for a in alerts] == [(50, "kernel_jump", "fc1")]
    assert alerts[0].value == pytest.approx(1.2e-2)
    assert alerts[0].reference == pytest.approx(1e-3)
    assert "12.0x its running median" in alerts[0].message and "at step 50 in fc1" in alerts[0].message


def test_kernel_jump_quiet_on_measurement_noise_only() -> None:
    values = _noisy(1e-3, 0.3, 60, seed=1)
    assert run_rule(KernelJump(), series(VELOCITY, values, noise=3e-4)) == []


def test_kernel_jump_within_the_noise_estimate_does_not_fire() -> None:
    values = [1e-3, 1e-3, 1e-3, 1e-3, 6e-3]
    assert run_rule(KernelJump(), series(VELOCITY, values, noise=2e-3)) == []
    assert len(run_rule(KernelJump(), series(VELOCITY, values, noise=1e-3))) == 1


def test_kernel_jump_needs_a_material_angle() -> None:
    values = [1e-6, 1e-6, 1e-6, 1e-6, 1e-4]  # 100x, but 1e-4 rad/step * 10 steps = 1e-3 rad: a wiggle
    assert run_rule(KernelJump(), series(VELOCITY, values)) == []


def test_kernel_jump_cooldown_is_respected() -> None:
    values = [1e-3] * 4 + [2e-2, 1e-3, 2e-2, 1e-3, 2e-2, 1e-3, 1e-3, 1e-3, 2e-2]
    alerts = run_rule(KernelJump(cooldown=5, window=9), series(VELOCITY, values))
    assert [a.step for a in alerts] == [50, 130]
    no_cooldown = run_rule(KernelJump(cooldown=0, window=9), series(VELOCITY, values))
    assert [a.step for a in no_cooldown] == [50, 70, 90, 130]


def test_kernel_jump_patience_requires_consecutive_measurements() -> None:
    values = [1e-3] * 5 + [2e-2, 1e-3, 2e-2, 2.5e-2]
    alerts = run_rule(KernelJump(patience=2, window=5), series(VELOCITY, values))
    assert [a.step for a in alerts] == [90]


# -------------------------------------------------------------------------------------- conservation broken
def test_conservation_broken_fires_when_drift_exceeds_what_steps_explain() -> None:
    drift = [0.001, 0.002, 0.004, 0.05, 0.08]
    explained = [0.001, 0.002, 0.004, 0.005, 0.006]
    alerts = run_rule(ConservationBroken(), series(DRIFT, drift, noise=1e-6, extra={EXPLAINED: explained}))
    assert [(a.step, a.layer) for a in alerts] == [(40, "fc1-fc2")]
    assert alerts[0].value == pytest.approx(0.05) and alerts[0].reference == pytest.approx(0.005)
    assert "gradient steps explain at most 0.005" in alerts[0].message


def test_conservation_quiet_when_steps_explain_the_drift() -> None:
    drift = [0.01 * i for i in range(1, 30)]
    explained = [0.012 * i for i in range(1, 30)]
    assert run_rule(ConservationBroken(), series(DRIFT, drift, extra={EXPLAINED: explained})) == []


def test_conservation_quiet_on_rounding_noise() -> None:
    rounding = _noisy(3e-3, 0.2, 30, seed=3)
    assert run_rule(ConservationBroken(), series(DRIFT, rounding, noise=2e-3, extra={EXPLAINED: [1e-5] * 30})) == []
    assert run_rule(ConservationBroken(), series(DRIFT, rounding, noise=1e-6, extra={EXPLAINED: [1e-5] * 30}))


def test_conservation_not_judged_without_an_explained_bound() -> None:
    assert run_rule(ConservationBroken(), series(DRIFT, [0.5, 0.9])) == []


# ---------------------------------------------------------------------------------------------- non finite
def test_non_finite_fires_once_per_episode_and_names_layers() -> None:
    tag = "regimescope/kernel/block/fc2"
    values = [0.1, math.nan, math.nan, 0.2, math.inf]
    alerts = run_rule(NonFinite(), series(tag, values))
    assert [(a.step, a.layer) for a in alerts] == [(20, "fc2"), (50, "fc2")]
    assert "1 non-finite value(s)" in alerts[0].message and "diverged" in alerts[0].meaning


def test_an_undefined_ratio_is_not_divergence() -> None:
    """Only the markers of non-finite weights, outputs and kernel blocks count; an infinite ratio does not."""
    ratio = "regimescope/weights/relative_change/head"
    assert run_rule(NonFinite(), series(ratio, [math.inf, math.inf, math.nan])) == []
    marker = "regimescope/weights/value/head.weight"
    assert len(run_rule(NonFinite(), series(marker, [0.0, math.nan]))) == 1


def test_non_finite_quiet_on_finite_values() -> None:
    assert run_rule(NonFinite(), series(VELOCITY, _noisy(1.0, 10.0, 50))) == []


# ----------------------------------------------------------------------------------------------- user rules
def test_threshold_over_a_pattern_judges_each_layer() -> None:
    cka = "regimescope/representation/cka_to_init/"
    observations = [
        Observation(10, {cka + "relu1": 0.9, cka + "relu2": 0.95}),
        Observation(20, {cka + "relu1": 0.4, cka + "relu2": 0.9}),
        Observation(30, {cka + "relu1": 0.3, cka + "relu2": 0.45}),
    ]
    rule = Threshold(cka + "*", below=0.5, name="representation_moved", meaning="the layer's features changed.")
    alerts = run_rule(rule, observations)
    assert [(a.step, a.kind, a.layer) for a in alerts] == [
        (20, "representation_moved", "relu1"),
        (30, "representation_moved", "relu2"),
    ]
    assert alerts[0].message.endswith("the layer's features changed.")


def test_threshold_crossing_must_exceed_noise() -> None:
    tag = "regimescope/kernel/target_alignment"
    observations = series(tag, [0.5, 0.52, 0.61], noise=0.03)
    assert [a.step for a in run_rule(Threshold(tag, above=0.5), observations)] == [30]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Threshold("t"), ValueError, "needs `above=` or `below=`"),
        (lambda: Threshold("t", above=0.1, below=0.2), ValueError, "swap"),
        (lambda: Threshold(3, above=1.0), TypeError, "pattern string"),
        (lambda: KernelJump(patience=0), ValueError, "`patience` must be an integer >= 1"),
        (lambda: RegimeShift(cooldown=-1), ValueError, "`cooldown` must be an integer >= 0"),
        (lambda: KernelJump(factor=0), ValueError, "`factor` must be a finite number > 0"),
        (lambda: KernelJump(min_history=9, window=3), ValueError, "cannot exceed `window`"),
        (lambda: ConservationBroken(tolerance=-1), ValueError, "`tolerance`"),
    ],
)
def test_rule_arguments_are_validated(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()
