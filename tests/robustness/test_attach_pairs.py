"""Layer pairs on parametrized, tied, frozen and zero-initialised layers: what their balance means (theory.md section
2, :mod:`regimescope.conservation.parameters`), and that finding them never crashes and never runs the model."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

import regimescope as rs
from regimescope.conservation import Break, conserved_quantities, find_layer_pairs, find_pairs, layer_pair
from regimescope.indicators.balance import BalanceIndicator
from tests.robustness._attach_models import IN, OUT, build

NO_BALANCE = ["spectral_norm", "orthogonal", "legacy_spectral_norm"]
WEIGHT_NORM = {"weight_norm": "2.parametrizations.weight.original0", "legacy_weight_norm": "2.weight_g"}


def _build(name: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's deprecation of the legacy weight_norm
        return build(name)


def _pairs(model: nn.Module) -> dict[str, object]:
    return {pair.name: pair for pair in find_pairs(model)}


@pytest.mark.parametrize("name", NO_BALANCE)
def test_a_normalising_parametrization_leaves_both_pairs_without_balance(name: str) -> None:
    model = _build(name)
    pairs = _pairs(model)
    assert set(pairs) == {"0-2", "2-4"}
    for pair in pairs.values():
        assert not pair.conserved and not pair.has_balance and Break.PARAMETRIZED in pair.breaks
        assert "2.weight is computed by the parametrization" in pair.reason and "no balance" in pair.reason
    assert conserved_quantities(model) == {}


def test_an_unknown_parametrization_gets_no_balance_and_says_why() -> None:
    pairs = _pairs(build("custom_parametrization"))
    assert all(not pair.has_balance for pair in pairs.values())
    assert pairs["0-2"].reason == (
        "the incoming 0.bias is computed by the parametrization Doubled, unknown to regimescope: whether a per-unit "
        "rescaling survives it is not known, so the pair gets no balance"
    )
    assert "the incoming 2.weight is computed by the parametrization Doubled" in pairs["2-4"].reason


def test_parametrized_attention_projections_have_no_balance() -> None:
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True))
    parametrizations.orthogonal(model[0].self_attn.out_proj)
    pairs = {pair.name: pair for pair in find_pairs(model)}
    assert pairs["0.self_attn.qk"].conserved and pairs["0.linear1-0.linear2"].conserved
    assert not pairs["0.self_attn.vo"].has_balance
    reason = pairs["0.self_attn.vo"].reason
    assert reason.startswith("0.self_attn.out_proj.weight is computed by the parametrization _Orthogonal, which norm")


@pytest.mark.parametrize("name", sorted(WEIGHT_NORM))
def test_weight_norm_balances_the_magnitude_of_the_incoming_layer(name: str) -> None:
    """``w_k = g_k v_k / |v_k|``: the symmetry rescales ``g_k``, so ``delta_k = |a_k|^2 - g_k^2 - b_k^2``; a
    weight-normed outgoing layer has no per-unit rescaling."""
    model = _build(name)
    pairs = _pairs(model)
    incoming, outgoing = pairs["2-4"], pairs["0-2"]
    assert incoming.conserved and incoming.in_weight == WEIGHT_NORM[name] and incoming.matrix_blocks is None
    assert not outgoing.has_balance and outgoing.breaks == {Break.PARAMETRIZED}
    assert "the outgoing 2.weight is computed by the parametrization" in outgoing.reason
    (balance,) = conserved_quantities(model).values()
    g = dict(model.named_parameters())[WEIGHT_NORM[name]].detach().double().reshape(-1)
    a, b = model[4].weight.detach().double(), model[2].bias.detach().double()
    torch.testing.assert_close(balance.delta, a.square().sum(0) - g.square() - b.square(), rtol=1e-12, atol=0)
    assert balance.matrix is None


def test_a_parameter_tied_between_modules_breaks_every_pair_it_is_in() -> None:
    model = build("tied")
    pairs = _pairs(model)
    assert set(pairs) == {"inp-a", "a-b", "b-out"}
    for pair in pairs.values():
        assert not pair.conserved and Break.SHARED in pair.breaks and "tied weights" in pair.reason
    assert "b.weight is the same Parameter as a.weight" in pairs["b-out"].reason
    quantities = conserved_quantities(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert set(quantities) == set(pairs)  # read under both names, with the optimizer's rates


def test_tied_and_frozen_projections_of_attention_heads() -> None:
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.other = nn.Linear(8, 8)
            self.other.weight = self.attn.out_proj.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.other(self.attn(x, x, x)[0])

    model = Heads()
    pairs = {pair.name: pair for pair in find_pairs(model)}
    assert pairs["attn.qk"].conserved
    assert not pairs["attn.vo"].conserved and pairs["attn.vo"].breaks == {Break.SHARED}


@pytest.mark.parametrize("name", ["spectral_norm", "weight_norm", "orthogonal"])
def test_layer_pair_by_hand_never_runs_a_parametrization_on_the_model(name: str) -> None:
    model = _build(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    layer_pair(model, "2", "4")
    find_layer_pairs(model)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_tracing_runs_a_copy_so_a_stateful_forward_changes_nothing() -> None:
    model = build("running_norm")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = find_layer_pairs(model)
    assert [pair.name for pair in pairs] == ["1-3", "3-5"]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_an_all_zero_pair_has_no_balance_and_no_infinite_drift(caplog: pytest.LogCaptureFixture) -> None:
    model = build("all_zero")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = rs.Probe(torch.randn(8, IN), torch.randint(0, OUT, (8,)))
    with caplog.at_level(logging.INFO, logger="regimescope.indicators.balance"):
        monitor = rs.RegimeMonitor(model, probe, optimizer=optimizer).attach()
    balance = [i for i in monitor.indicators if isinstance(i, BalanceIndicator)]
    assert not balance  # nothing left to report: the indicator is not applicable
    assert "2 all-zero (0-2, 2-4)" in caplog.text
    scalars = monitor.history[0].scalars
    assert all(abs(v) != float("inf") and v == v for v in scalars.values())
    assert not any("balance" in name for name in scalars)
    monitor.close()


def test_zero_head_zero_bias_and_a_zero_lora_factor_give_finite_balances() -> None:
    model = build("zero_init")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    probe = rs.Probe(torch.randn(8, IN), torch.randint(0, OUT, (8,)))
    monitor = rs.RegimeMonitor(model, probe, optimizer=optimizer, schedule=lambda s: True, max_overhead=None).attach()
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(probe.inputs), probe.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for record in monitor.history:  # weights/relative_change is another indicator's (tests/indicators)
        balance = {k: v for k, v in record.scalars.items() if "balance" in k or "conservation" in k}
        assert all(v == v and abs(v) != float("inf") for v in balance.values()), balance
    assert monitor.forecast.label is not None and all(
        v == v and abs(v) != float("inf") for v in (monitor.forecast.fast.change, monitor.forecast.full.change)
    )
    first, last = monitor.history[0].scalars, monitor.history[-1].scalars
    assert {"regimescope/balance/2.down-2.up", "regimescope/balance_drift/2.down-2.up"} <= set(last)
    assert first["regimescope/balance/2.down-2.up"] == pytest.approx(-1.0)  # B = 0 at init: all incoming
    assert not monitor.paused
    monitor.close()
