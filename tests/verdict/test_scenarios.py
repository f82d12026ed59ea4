"""The calibrated verdict on every scenario theory knows the answer for (theory.md sections 4-6)."""

from __future__ import annotations

import pytest

from regimescope.scenarios import SCENARIOS, Theory
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE
from tests.scenarios._outcomes import outcomes

MARGIN = 0.05
"""How far inside its label's band a run theory answers definitely must end."""


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_verdict_agrees_with_theory(name: str) -> None:
    outcome = outcomes()[name]
    assert outcome.agrees, (outcome.scenario.theory, outcome.early_label, outcome.label, outcome.score)
    if outcome.scenario.theory is Theory.LAZY:
        assert outcome.score <= LAZY_BELOW - MARGIN
    if outcome.scenario.theory in (Theory.RICH, Theory.DELAYED_RICH):
        assert outcome.score >= RICH_ABOVE + MARGIN


@pytest.mark.slow
def test_the_trap_changes_a_representation_but_not_the_kernel() -> None:
    """theory.md 5.5: CKA to init ~ 0.5 in the small first layer while S ~ 1e-6; the verdict stays lazy and says why."""
    outcome = outcomes()["trap/representation"]
    cka = outcome.final("regimescope/representation/cka_to_init/0")
    assert cka < 0.6
    assert outcome.distance < 1e-5
    assert outcome.label == "lazy"
    assert outcome.final("regimescope/kernel/share/1") < 1e-3
    assert "Representation of `0` changed" in outcome.explanation


@pytest.mark.slow
def test_delayed_rich_run_passes_through_every_label_in_order() -> None:
    outcome = outcomes()["minimal/downstream"]
    labels = [
        int(r.scalars["regimescope/regime/label"]) for r in outcome.history if "regimescope/regime/label" in r.scalars
    ]
    assert labels == sorted(labels) and labels[0] == 0 and labels[-1] == 2


@pytest.mark.slow
def test_aligned_balanced_run_is_rich_by_growth_alone() -> None:
    """The kernel keeps its direction exactly (S = 0) and grows tenfold: only the scale evidence can see it."""
    outcome = outcomes()["minimal/balanced-aligned"]
    assert outcome.distance < 1e-10 and outcome.change > 5 and outcome.label == "rich"
