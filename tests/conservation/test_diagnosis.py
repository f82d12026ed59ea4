"""Naming what moved a pair's balance: gradient flow, finite steps, weight decay, Adam, a tanh (theory.md section 2)."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from regimescope.conservation import (
    DriftCause,
    DriftDiagnoser,
    OptimizerFacts,
    PairSquares,
    diagnose_drift,
    diagnosis_markdown,
    find_layer_pairs,
    optimizer_facts,
)
from tests.conservation._nets import inputs_for, targets_for, train, two_layer

SGD = OptimizerFacts(name="SGD", plain=True, lr=0.01, momentum=0.0, weight_decay=0.0)
DELTA_0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
SCALE_0 = torch.tensor([3.0, 4.0], dtype=torch.float64)


def _diagnose(delta_t: torch.Tensor, facts: OptimizerFacts | None = SGD, **kwargs: object) -> DriftCause:
    return diagnose_drift("p", DELTA_0, delta_t, SCALE_0, steps=100, facts=facts, **kwargs).cause


def test_each_cause_from_its_signature() -> None:
    small, large = DELTA_0 + 1e-4, DELTA_0 + 0.5
    assert _diagnose(small) is DriftCause.GRADIENT_FLOW
    assert _diagnose(large) is DriftCause.FINITE_STEPS
    assert _diagnose(large, explained=0.2) is DriftCause.FINITE_STEPS
    assert _diagnose(large, explained=0.01) is DriftCause.UNEXPLAINED
    assert _diagnose(small, homogeneous=False) is DriftCause.NON_HOMOGENEOUS
    adam = OptimizerFacts(name="Adam", plain=False, lr=1e-3, momentum=0.0, weight_decay=0.0)
    assert _diagnose(small, adam) is DriftCause.ADAPTIVE
    assert _diagnose(large, None) is DriftCause.UNEXPLAINED
    assert _diagnose(small, None) is DriftCause.GRADIENT_FLOW


def test_weight_decay_is_compared_with_the_exponential() -> None:
    facts = OptimizerFacts(name="SGD", plain=True, lr=0.01, momentum=0.0, weight_decay=0.5)
    factor = math.exp(-2 * 0.01 * 0.5 * 100)
    matching = diagnose_drift("p", DELTA_0, DELTA_0 * factor, SCALE_0, steps=100, facts=facts)
    assert matching.cause is DriftCause.WEIGHT_DECAY and "consistent with it" in matching.message
    assert f"{factor:.3g}" in matching.message
    other = diagnose_drift("p", DELTA_0, DELTA_0 * factor + 0.3, SCALE_0, steps=100, facts=facts)
    assert "more than weight decay explains" in other.message


def test_message_and_markdown_carry_the_numbers() -> None:
    diagnosis = diagnose_drift("fc1-fc2", DELTA_0, DELTA_0 + 0.5, SCALE_0, steps=100, facts=SGD, explained=0.3)
    assert "drift 0.141 of the initial scale after 100 steps" in diagnosis.message
    assert "within the 0.3 the steps taken explain" in diagnosis.message
    text = diagnosis_markdown([diagnosis], step=100)
    assert text.splitlines() == [
        "**balance drift at step 100**",
        f"- `fc1-fc2`: finite-step (SGD-scale) drift - {diagnosis.message}",
    ]


def test_optimizer_facts_read_the_pairs_param_group() -> None:
    model = two_layer()
    groups = [{"params": model[0].parameters(), "lr": 0.02, "weight_decay": 0.1}, {"params": model[2].parameters()}]
    facts = optimizer_facts(torch.optim.SGD(groups, lr=0.1, momentum=0.9), model, "0.weight")
    assert facts == OptimizerFacts(name="SGD", plain=True, lr=0.02, momentum=0.9, weight_decay=0.1)
    assert facts.effective_step == pytest.approx(0.2)
    assert not optimizer_facts(torch.optim.Adam(model.parameters()), model, "0.weight").plain
    assert optimizer_facts(torch.optim.SGD(model[2].parameters(), lr=0.1), model, "0.weight") is None


def _run(optimizer_factory, activation: nn.Module | None = None, steps: int = 200) -> DriftCause:
    """Train a two-layer net and diagnose its (only) pair's drift."""
    model = two_layer(activation, hidden=8)
    x = inputs_for(model, n=32)
    y = targets_for(model, x)
    pair = find_layer_pairs(model)[0]
    diagnoser = DriftDiagnoser([(pair, None, pair.conserved)])
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = optimizer_factory(model.parameters())
    train(model, x, y, optimizer, steps)
    now = {name: p.detach().clone() for name, p in model.named_parameters()}
    (diagnosis,) = diagnoser.diagnose(PairSquares(start), PairSquares(now), steps=steps, optimizer=optimizer, model=model, explained={})
    return diagnosis.cause


def test_real_runs_get_their_cause() -> None:
    assert _run(lambda p: torch.optim.SGD(p, lr=1e-3)) is DriftCause.GRADIENT_FLOW
    assert _run(lambda p: torch.optim.SGD(p, lr=0.2)) is DriftCause.FINITE_STEPS
    assert _run(lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=0.3)) is DriftCause.WEIGHT_DECAY
    assert _run(lambda p: torch.optim.Adam(p, lr=1e-3)) is DriftCause.ADAPTIVE
    assert _run(lambda p: torch.optim.SGD(p, lr=1e-3), nn.Tanh()) is DriftCause.NON_HOMOGENEOUS


def test_diagnoser_logs_only_when_a_cause_changes(caplog: pytest.LogCaptureFixture) -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    diagnoser = DriftDiagnoser([(pair, None, True)])
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    moved = {**start, "2.weight": start["2.weight"] * 2}
    with caplog.at_level(logging.INFO, logger="regimescope.conservation.diagnosis"):
        for weights in (start, start, moved):
            diagnoser.diagnose(PairSquares(start), PairSquares(weights), steps=10, optimizer=None, model=model, explained={})
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "regimescope balance 0-2",
        "regimescope balance 0-2",
    ]
    assert "consistent with gradient flow" in caplog.records[0].getMessage()
    assert "unexplained" in caplog.records[1].getMessage()


def test_an_all_zero_pair_has_no_drift_to_diagnose() -> None:
    model = two_layer()
    pair = find_layer_pairs(model)[0]
    zero = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    moved = {**zero, "2.weight": torch.ones_like(zero["2.weight"])}
    diagnoser = DriftDiagnoser([(pair, None, True)])
    assert diagnoser.diagnose(PairSquares(zero), PairSquares(moved), steps=10, optimizer=None, model=model, explained={}) == []
    zeros = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="zero weights at initialisation"):
        diagnose_drift("p", zeros, DELTA_0, zeros, steps=10, facts=SGD)
