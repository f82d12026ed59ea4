"""The phase diagrams against theory (theory.md sections 4 and 6): forecast and measured boundaries land where theory
puts them, within a factor of 2 in the knob, and agree with each other.

- lambda-balanced linear nets: the exact solution gives the boundary in lambda (``|lambda|`` large is lazy).
- teacher-student two-layer ReLU student (mirrored, zero initial function): homogeneity ``f(c theta) = c^2 f(theta)``
  makes an initialisation scale ``c`` the same run as the output scale ``alpha = c^2`` (with the learning rate
  matched to the kernel), so theory puts the output-scale boundary at the square of the init-scale one.
- output scale (theory.md 6.4's own scenario, the catalogue's ``scale/alpha-*`` net): the lazy side follows theory's
  scaling (parameters move ``~ 1 / alpha``, so ``S ~ alpha^-2`` and the relative change ``~ alpha^-1``), which, from
  the catalogue's lazy run at ``alpha = 30``, puts the boundary an order of magnitude away, where both diagrams
  find it.
- width: wider is lazier under the NTK parametrisation and the standard one (at its stable rate ``~ 1 / m``), not
  under muP.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.exact import LambdaBalancedSolution, lambda_balanced_init
from regimescope.knobs import rebalance
from regimescope.scenarios import InitSpec, Theory, get, loss, make_probe, make_student, make_teacher_student
from regimescope.scenarios.catalogue import output_scale_setup
from regimescope.scenarios.models import two_layer_linear, whitened_inputs
from regimescope.sweep import MEASURED_BOUNDARY, measured_boundary
from regimescope.tags import tag
from regimescope.verdict import richness_score
from regimescope.verdict.score import RAMPS

FACTOR = 2.0
"""Largest ratio between two boundaries (issue 14: within a factor of 2 in the knob)."""


def _ends(schedule_steps: int):
    return lambda step: step % schedule_steps == 0


def _single(boundaries: list[float]) -> float:
    assert len(boundaries) == 1, boundaries
    return boundaries[0]


def _close(a: float, b: float) -> bool:
    return max(a, b) / min(a, b) < FACTOR


# ------------------------------------------------------------------------------------------- lambda-balanced
LAMBDA_DIM, LAMBDA_SAMPLES, LAMBDA_STEPS, LAMBDA_RATE = 3, 12, 300, 0.03


def _lambda_task() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = whitened_inputs(LAMBDA_SAMPLES, LAMBDA_DIM, 0, scale=LAMBDA_SAMPLES)
    y = x @ np.random.default_rng(1).standard_normal((LAMBDA_DIM, LAMBDA_DIM)).T
    w_1, w_2 = lambda_balanced_init(0.0, np.linspace(1, 0.5, LAMBDA_DIM), LAMBDA_DIM, LAMBDA_DIM, seed=1)
    _, vectors = np.linalg.eigh(w_1 @ w_1.T)  # hidden units along the singular directions: per-unit delta = lambda I
    return x, y, vectors.T @ w_1, w_2 @ vectors


def _lambda_rate(delta: float) -> float:
    return LAMBDA_RATE / (abs(delta) + 4)  # the kernel grows as |lambda|: the same progress at every point


@pytest.mark.slow
def test_lambda_balanced_boundary_is_where_the_exact_solution_puts_it() -> None:
    x, y, w_1, w_2 = _lambda_task()
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)

    def step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: object) -> float:
        optimizer.zero_grad()
        loss = 0.5 * (model(inputs) - targets).square().sum() / LAMBDA_SAMPLES
        loss.backward()
        optimizer.step()
        return loss.item()

    result = rs.sweep(
        lambda: two_layer_linear(w_1, w_2),
        {"delta": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]},
        make_optimizer=lambda model, delta: torch.optim.SGD(model.parameters(), lr=_lambda_rate(delta)),
        data=[None],
        train_step=step,
        probe=rs.Probe(inputs, targets),
        steps=LAMBDA_STEPS,
        monitor_options={"schedule": _ends(LAMBDA_STEPS), "dtype": torch.float64},
    )
    exact = []
    for row in result.table:
        model = rebalance(two_layer_linear(w_1, w_2), delta=row["delta"])
        solution = LambdaBalancedSolution(model[0].weight.detach().numpy(), model[1].weight.detach().numpy(), x, y)
        k_0 = torch.from_numpy(solution.at(0).kernel(x))
        k_t = torch.from_numpy(solution.at(LAMBDA_STEPS * _lambda_rate(row["delta"])).kernel(x))
        scalars = {
            tag("kernel", "distance_from_init"): float(rs.kernel_distance(k_0, k_t)),
            tag("kernel", "relative_change"): float(rs.relative_change(k_t, k_0)),
        }
        exact.append({"delta": row["delta"], "score": richness_score(scalars), "error": None})
        assert row["score"] == pytest.approx(exact[-1]["score"], abs=0.05)
    theory = _single(measured_boundary(exact, "delta"))
    measured, forecast = _single(result.measured_boundary("delta")), _single(result.forecast_boundary("delta"))
    assert _close(measured, theory) and _close(forecast, theory) and _close(forecast, measured), (
        theory,
        measured,
        forecast,
    )


# ------------------------------------------------------------------------------------------- teacher-student
def _student() -> nn.Module:
    return make_student(InitSpec(scale=1.0, balance=0.0), 8, 32, seed=0)


def _student_rate(model: nn.Module, init_scale: float = 1.0, output_scale: float = 1.0) -> torch.optim.Optimizer:
    """The kernel scales as ``c^2`` with the init scale and ``alpha^2`` with the output scale."""
    return torch.optim.SGD(model.parameters(), lr=min(0.1, 0.0108 / (init_scale**2 * output_scale**2)))


@pytest.mark.slow
def test_teacher_student_init_and_output_scale_boundaries_agree_with_each_other_and_with_homogeneity() -> None:
    x, y = make_teacher_student(128, 8, seed=0)
    probe = rs.Probe(*make_probe(8, seed=0, n=48))
    common = {
        "make_optimizer": _student_rate,
        "data": [(x, y)],
        "probe": probe,
        "steps": 300,
        "monitor_options": {"schedule": _ends(150)},
    }
    scales = rs.sweep(_student, {"init_scale": [0.35, 0.5, 0.7, 1.0, 1.4]}, **common)
    outputs = rs.sweep(_student, {"output_scale": [0.125, 0.25, 0.5, 1.0, 2.0]}, **common)
    tau = _single(scales.measured_boundary("init_scale")), _single(scales.forecast_boundary("init_scale"))
    alpha = _single(outputs.measured_boundary("output_scale")), _single(outputs.forecast_boundary("output_scale"))
    assert _close(*tau) and _close(*alpha), (tau, alpha)
    for c, a in zip(tau, alpha):
        assert _close(c**2, a), (tau, alpha)


# ------------------------------------------------------------------------------------------ output scale (6.4)
ALPHA_LAZY = get("scale/alpha-30")
"""theory.md 6.4's lazy run: ``30 (g - g_0)``, ``g`` a width-64 ReLU net on the smooth task, on ``loss / 30^2``."""
ALPHAS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
ALPHA_STEPS = 1200
"""Four times the catalogue run's 300 steps at its rate: every run fits (loss below 1 % of its start), so the measured
diagram, like the forecast (the kernel solution's whole fit), looks at the end of the fit. (After 300 steps the slow
directions are not all learnt: theory's boundary is then 1.6, the measured 2.3, the forecast 3.2.)"""


def _alpha_boundary_from_scaling(anchor: dict) -> float:
    """The alpha at which the score of the anchor's kernel change, extrapolated by theory's scaling, is 0.5.

    theory.md 6.4: trained on ``loss / alpha^2``, the parameters move ``~ 1 / alpha``; the relative kernel change is
    first order in that move (``~ 1 / alpha``) and the kernel distance second order (section 5.1: ``~ alpha^-2``). The
    score is the larger of the two ramps' evidence, so it reaches 0.5 where the first of the two reaches its
    ramp's middle.
    """
    alpha = anchor["alpha"]
    by_distance = alpha * math.sqrt(anchor["distance"] / RAMPS["direction"].boundary(MEASURED_BOUNDARY))
    by_change = alpha * anchor["change"] / RAMPS["scale"].boundary(MEASURED_BOUNDARY)
    return max(by_distance, by_change)


@pytest.mark.slow
def test_output_scale_boundary_is_where_the_lazy_scaling_of_theory_puts_it() -> None:
    """theory.md 6.4's own scenario (the catalogue's ``scale/alpha-30`` net, data, loss ``/ alpha^2`` and rate) swept
    over alpha from 0.5 to 30.

    Compared: (1) theory's qualitative statement, larger alpha is lazier (the forecast's ratio falls and the score
    does not rise with alpha; the catalogue's alpha = 30 run is lazy, as the catalogue says); (2) theory's scaling on
    the lazy side (``S alpha^2`` and ``|dK| / |K_0| alpha`` flat within 1.5x over alpha 8-30); (3) the boundaries:
    theory's is the alpha at which the alpha = 30 run's ``S`` and relative change, extrapolated by those scalings,
    score 0.5 (a prediction from one lazy run, 10x away from where it lands); the measured boundary is where the
    runs' own scores cross 0.5, the forecast's where the step-0 lazy ratio crosses its threshold. All three must lie
    within a factor of 2 of each other. (Numbers on this machine: theory 2.2, measured 2.7, forecast 3.2.)
    """
    lazy = ALPHA_LAZY.build()
    setups = {alpha: output_scale_setup(alpha, lazy.lr, ALPHA_STEPS) for alpha in ALPHAS}

    def step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: object, alpha: float) -> float:
        optimizer.zero_grad()
        value = loss(dataclasses.replace(setups[alpha], model=model))
        value.backward()
        optimizer.step()
        return value.item()

    result = rs.sweep(
        lambda alpha: output_scale_setup(alpha, lazy.lr, ALPHA_STEPS).model,
        {"alpha": ALPHAS},
        make_optimizer=lambda model: torch.optim.SGD(model.parameters(), lr=lazy.lr),
        data=[None],
        train_step=step,
        probe=lazy.probe,
        steps=ALPHA_STEPS,
        monitor_options={"schedule": _ends(ALPHA_STEPS), "dtype": torch.float64},
    )
    rows = result.table
    assert all(row["loss_end"] < 0.01 * row["loss_start"] for row in rows)
    assert all(np.diff([row["forecast_ratio"] for row in rows]) < 0) and all(np.diff([r["score"] for r in rows]) <= 0)
    assert ALPHA_LAZY.theory is Theory.LAZY and rows[-1]["label"] == "lazy" and rows[0]["label"] == "rich"
    lazy_side = [row for row in rows if row["alpha"] >= 8]
    for key, power in (("distance", 2), ("change", 1)):
        scaled = [row[key] * row["alpha"] ** power for row in lazy_side]
        assert max(scaled) / min(scaled) < 1.5, (key, scaled)
    theory = _alpha_boundary_from_scaling(rows[-1])
    measured, forecast = _single(result.measured_boundary("alpha")), _single(result.forecast_boundary("alpha"))
    assert _close(measured, theory) and _close(forecast, theory) and _close(forecast, measured), (
        theory,
        measured,
        forecast,
    )


# ----------------------------------------------------------------------------------------------------- width
def _width_net(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(8, width, bias=False), nn.ReLU(), nn.Linear(width, 1, bias=False)).double()


def _width_rate(model: nn.Module, width: int, parametrisation: str) -> torch.optim.Optimizer:
    """One rate tuned at width 64; the standard parametrisation's kernel grows as ``m``, so its stable rate as ``1/m``."""
    scale = 64 / width if parametrisation == "standard" else 1.0
    return torch.optim.SGD(model.parameters(), lr=0.12 * scale)


@pytest.mark.slow
@pytest.mark.parametrize(
    "parametrisation, widths",
    [("ntk", [64, 128, 256, 512, 1024]), ("standard", [64, 256, 1024]), ("mup", [64, 256, 1024])],
)
def test_wider_is_lazier_under_ntk_and_standard_but_not_under_mup(parametrisation: str, widths: list[int]) -> None:
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(32, 8, generator=generator, dtype=torch.float64)
    y = torch.sin(1.5 * x[:, :1]) + 0.5 * x[:, 1:2]
    result = rs.sweep(
        _width_net,
        {"parametrisation": [parametrisation], "width": widths},
        make_optimizer=_width_rate,
        data=[(x, y)],
        probe=rs.Probe(x, y),
        steps=400,
        base_width=64,
        monitor_options={"schedule": _ends(400), "dtype": torch.float64},
    )
    ratios = [row["forecast_ratio"] for row in result.table]
    scores = [row["score"] for row in result.table]
    distances = [row["distance"] for row in result.table]
    if parametrisation == "mup":
        assert max(ratios) / min(ratios) < 1.5 and max(scores) - min(scores) < 0.1 and min(scores) > 0.65
        assert max(distances) / min(distances) < 1.5
        assert result.measured_boundary("width") == [] and result.forecast_boundary("width") == []
    else:
        assert all(np.diff(ratios) < 0) and all(np.diff(distances) < 0) and all(np.diff(scores) <= 0)
        assert scores[0] > 0.65 and scores[-1] < 0.35
        measured, forecast = _single(result.measured_boundary("width")), _single(result.forecast_boundary("width"))
        assert _close(measured, forecast), (measured, forecast)
    assert not math.isnan(sum(distances))
