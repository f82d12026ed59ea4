"""The demo scenarios land where theory says (theory.md 6.3, 6.6), measured with a closed-form NTK.

The kernel here is the two-layer ReLU closed form of theory.md section 3 (kept in this test module on purpose:
it is the calibration reference, independent of the library's NTK engine). Every run is the quick one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from regimescope.demo import (
    DEFAULT_MEASUREMENTS,
    SCENARIOS,
    Expectation,
    InitSpec,
    Parametrisation,
    ScenarioSpec,
    TwoLayerReLU,
    get_scenario,
    make_model,
    make_probe,
    make_student,
    train,
)

RICH_DISTANCE = 0.1
LAZY_DISTANCE = 1e-3
LAZY_RELATIVE_CHANGE = 0.1
EARLY_FRACTION = 0.1
FITTED_LOSS_FRACTION = 0.05


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
    """What a quick run of a scenario did to the probe NTK and the loss."""

    distance: float
    change: float
    early_distance: float
    early_change: float
    early_loss: float
    initial_loss: float
    final_loss: float


def _run(spec: ScenarioSpec) -> Outcome:
    x_probe, _ = make_probe(spec.dim, spec.seed)
    model = make_model(spec, quick=True)
    k_0 = closed_form_ntk(model, x_probe)
    early_step = int(EARLY_FRACTION * spec.quick.steps)
    early: dict[str, torch.Tensor] = {}

    def remember_early_kernel(step: int) -> None:
        if step == early_step:
            early["kernel"] = closed_form_ntk(model, x_probe)

    model, history = train(spec, quick=True, model=model, callback=remember_early_kernel)
    k_t = closed_form_ntk(model, x_probe)
    return Outcome(
        distance=kernel_distance(k_0, k_t),
        change=relative_change(k_0, k_t),
        early_distance=kernel_distance(k_0, early["kernel"]),
        early_change=relative_change(k_0, early["kernel"]),
        early_loss=history.losses[early_step],
        initial_loss=history.initial_loss,
        final_loss=history.final_loss,
    )


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is faster, and immune to oversubscribed CI cores
    try:
        return {spec.name: _run(spec) for spec in SCENARIOS}
    finally:
        torch.set_num_threads(threads)


def _scenarios_expecting(expected: Expectation) -> list[str]:
    return [spec.name for spec in SCENARIOS if spec.expected is expected]


@pytest.mark.parametrize("name", _scenarios_expecting(Expectation.RICH))
def test_rich_scenarios_move_the_kernel(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.distance > RICH_DISTANCE, outcome


def test_small_balanced_kernel_grows_by_an_order_of_magnitude(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["balanced"].change > 10, outcomes["balanced"]


@pytest.mark.parametrize("name", _scenarios_expecting(Expectation.LAZY))
def test_lazy_scenarios_keep_the_kernel(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.distance < LAZY_DISTANCE, outcome
    assert outcome.change < LAZY_RELATIVE_CHANGE, outcome


@pytest.mark.parametrize("name", _scenarios_expecting(Expectation.LAZY_EARLY))
def test_lazy_early_scenarios_fit_first_and_move_the_kernel_later(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.early_loss < 0.1 * outcome.initial_loss, outcome
    assert outcome.early_distance < LAZY_DISTANCE, outcome
    assert outcome.early_change < LAZY_RELATIVE_CHANGE, outcome
    assert outcome.distance > 2 * outcome.early_distance, outcome


@pytest.mark.parametrize("name", [spec.name for spec in SCENARIOS])
def test_every_scenario_fits_the_task(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.final_loss < FITTED_LOSS_FRACTION * outcome.initial_loss, outcome


def test_there_are_five_named_scenarios_covering_every_expectation() -> None:
    names = [spec.name for spec in SCENARIOS]
    assert names == ["balanced", "upstream", "downstream", "large", "wide-ntk"]
    assert {spec.expected for spec in SCENARIOS} == set(Expectation)
    for spec in SCENARIOS:
        assert spec.quick.steps <= spec.full.steps and spec.quick.width <= spec.full.width
        assert get_scenario(spec.name) is spec


def test_balances_have_the_signs_their_names_say() -> None:
    assert get_scenario("balanced").init.balance == 0
    assert get_scenario("upstream").init.balance > 0
    assert get_scenario("downstream").init.balance < 0
    assert get_scenario("large").init.scale > 10 * get_scenario("balanced").init.scale
    assert get_scenario("wide-ntk").init.parametrisation is Parametrisation.NTK


def test_unknown_scenario_lists_the_valid_names() -> None:
    with pytest.raises(KeyError, match="balanced"):
        get_scenario("medium")


@pytest.mark.parametrize("quick", [True, False])
def test_measurement_interval_gives_about_the_default_count(quick: bool) -> None:
    for spec in SCENARIOS:
        count = spec.budget(quick).steps // spec.measurement_interval(quick)
        assert DEFAULT_MEASUREMENTS <= count < 2 * DEFAULT_MEASUREMENTS


def test_expectation_prints_as_its_value() -> None:
    assert str(Expectation.LAZY_EARLY) == "lazy early"
