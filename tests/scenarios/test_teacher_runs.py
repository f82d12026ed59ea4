"""The teacher-student scenarios (the demo's runs) land where theory says (theory.md 6.6), measured with a
closed-form NTK.

The kernel here is the two-layer ReLU closed form of theory.md section 3 (kept in this test module on purpose:
it is the reference for these runs, independent of the library's NTK engine), and the runs train without a monitor.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from regimescope.scenarios import DEMO, InitSpec, Parametrisation, Scenario, Theory, TwoLayerReLU, make_student, train

RICH_DISTANCE = 0.1
LAZY_DISTANCE = 1e-3
LAZY_RELATIVE_CHANGE = 0.1
EARLY_FRACTION = 0.1
FITTED_LOSS_FRACTION = 0.05
STABLE_SHARPNESS = 1.0
"""Bound on ``lr * loss_weight * lambda_max(K_train)`` (gradient descent is stable below 2; the runs reach 0.47)."""


def closed_form_ntk(model: TwoLayerReLU, x: torch.Tensor) -> torch.Tensor:
    """Trace NTK of ``f(x) = c_out sum_k a_k relu(c_in w_k . x + b_k)`` (theory.md section 3).

    ``K(x, x') = c_out^2 sum_k [relu(z_k) relu(z_k') + a_k^2 1[z_k > 0] 1[z_k' > 0] (c_in^2 x . x' + 1_bias)]``
    with ``z_k = c_in w_k . x + b_k``; the first term is the readout's block, the second the hidden layer's.
    """
    with torch.no_grad():
        z = model.hidden(model.input_scale * x)
        on = (z > 0).to(x.dtype)
        a_sq = model.readout.weight[0].pow(2)
        inputs = model.input_scale**2 * x @ x.T + (1.0 if model.hidden.bias is not None else 0.0)
        readout_block = torch.relu(z) @ torch.relu(z).T
        hidden_block = (on * a_sq) @ on.T * inputs
        return model.output_scale**2 * (readout_block + hidden_block)


def kernel_distance(k_a: torch.Tensor, k_b: torch.Tensor) -> float:
    """``S = 1 - <A, B>_F / (|A|_F |B|_F)``."""
    return (1 - (k_a * k_b).sum() / (k_a.norm() * k_b.norm())).item()


def relative_change(k_0: torch.Tensor, k_t: torch.Tensor) -> float:
    """``|K_t - K_0|_F / |K_0|_F``."""
    return ((k_t - k_0).norm() / k_0.norm()).item()


def autograd_ntk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``J J^T`` from one backward pass per probe input (slow reference for the closed form)."""
    rows = []
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(model(x[i : i + 1]).sum(), list(model.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jacobian = torch.stack(rows)
    return jacobian @ jacobian.T


@pytest.mark.parametrize(
    "init", [InitSpec(0.7, 0.3), InitSpec(1.0, None, Parametrisation.NTK)], ids=["standard", "ntk"]
)
@pytest.mark.parametrize("bias", [True, False])
def test_closed_form_ntk_matches_autograd(init: InitSpec, bias: bool) -> None:
    model = make_student(init, d=5, width=12, seed=1, bias=bias)
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(closed_form_ntk(model, x), autograd_ntk(model, x))


@dataclass
class Outcome:
    """What a scenario's run did to the probe NTK and the loss."""

    distance: float
    change: float
    early_distance: float
    early_change: float
    early_loss: float
    initial_loss: float
    final_loss: float
    sharpness: float


def _run(scenario: Scenario) -> Outcome:
    setup = scenario.build()
    x_probe = setup.probe.inputs
    k_0 = closed_form_ntk(setup.model, x_probe)
    early_step = int(EARLY_FRACTION * setup.steps)
    early: dict[str, torch.Tensor] = {}
    sharpness = [0.0]

    def remember(step: int) -> None:
        if step == early_step:
            early["kernel"] = closed_form_ntk(setup.model, x_probe)
        if step % 50 == 0:
            top = torch.linalg.eigvalsh(closed_form_ntk(setup.model, setup.inputs))[-1].item()
            sharpness[0] = max(sharpness[0], setup.lr * setup.loss_weight * top)

    optimizer = torch.optim.SGD(setup.model.parameters(), lr=setup.lr)
    losses = train(setup, optimizer, callback=remember)
    k_t = closed_form_ntk(setup.model, x_probe)
    return Outcome(
        distance=kernel_distance(k_0, k_t),
        change=relative_change(k_0, k_t),
        early_distance=kernel_distance(k_0, early["kernel"]),
        early_change=relative_change(k_0, early["kernel"]),
        early_loss=losses[early_step],
        initial_loss=losses[0],
        final_loss=losses[-1],
        sharpness=sharpness[0],
    )


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is faster, and immune to oversubscribed CI cores
    try:
        return {scenario.run: _run(scenario) for scenario in DEMO}
    finally:
        torch.set_num_threads(threads)


def _runs_expecting(theory: Theory) -> list[str]:
    return [scenario.run for scenario in DEMO if scenario.theory is theory]


@pytest.mark.parametrize("name", _runs_expecting(Theory.RICH))
def test_rich_runs_move_the_kernel(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.distance > RICH_DISTANCE, outcome


def test_small_balanced_kernel_grows_by_an_order_of_magnitude(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["balanced"].change > 10, outcomes["balanced"]


@pytest.mark.parametrize("name", _runs_expecting(Theory.LAZY))
def test_lazy_runs_keep_the_kernel(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.distance < LAZY_DISTANCE, outcome
    assert outcome.change < LAZY_RELATIVE_CHANGE, outcome


@pytest.mark.parametrize("name", _runs_expecting(Theory.LAZY_EARLY))
def test_lazy_early_runs_fit_first_and_move_the_kernel_later(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.early_loss < 0.1 * outcome.initial_loss, outcome
    assert outcome.early_distance < LAZY_DISTANCE, outcome
    assert outcome.early_change < LAZY_RELATIVE_CHANGE, outcome
    assert outcome.distance > 2 * outcome.early_distance, outcome


@pytest.mark.parametrize("name", [scenario.run for scenario in DEMO])
def test_every_run_fits_the_task_with_a_stable_step(outcomes: dict[str, Outcome], name: str) -> None:
    """The loss falls below ``FITTED_LOSS_FRACTION`` of its start, and ``lr * loss_weight * lambda_max(K_train)``
    stays well below gradient descent's stability limit 2 (no kernel change owed to a catapult)."""
    outcome = outcomes[name]
    assert outcome.final_loss < FITTED_LOSS_FRACTION * outcome.initial_loss, outcome
    assert outcome.sharpness < STABLE_SHARPNESS, outcome


def test_the_demo_runs_the_five_teacher_student_corners() -> None:
    assert [scenario.run for scenario in DEMO] == ["balanced", "upstream", "downstream", "large", "wide-ntk"]
    assert {scenario.theory for scenario in DEMO} == {Theory.RICH, Theory.LAZY, Theory.LAZY_EARLY}
