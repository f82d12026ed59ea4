"""The explanation: which evidence drove the label, and what else to read next to it."""

from __future__ import annotations

import pytest
import torch

import regimescope as rs
from regimescope.scenarios import get
from regimescope.tags import KERNEL_DISTANCE as DISTANCE_TAG
from regimescope.tags import KERNEL_RELATIVE_CHANGE as CHANGE_TAG
from regimescope.tags import noise_tag
from regimescope.verdict import RAMPS, Verdict, explain, richness_evidence, richness_score
from regimescope.verdict.labeler import LAZY_BELOW


def _verdict(scalars: dict[str, float], label: str) -> Verdict:
    return Verdict(step=40, score=richness_score(scalars), label=label, evidence=richness_evidence(scalars))


def test_names_the_label_its_meaning_and_the_driving_evidence() -> None:
    scalars = {DISTANCE_TAG: 0.2, CHANGE_TAG: 0.5}
    lines = explain(_verdict(scalars, "rich"), scalars).splitlines()
    assert (
        lines[0]
        == "**rich** at step 40 (score 1.00): the NTK has moved far from its initial value: the network is learning "
        "features."
    )
    assert lines[1].startswith("- S(K_0, K_t) = 0.2 -> 1.00 (drove the score; lazy below 0.00099, rich above 0.0083)")
    assert lines[2].startswith("- |K_t - K_0| / |K_0| = 0.5 -> 0.45 (in the score; lazy below 0.27, rich above 1.6)")


def test_a_changed_representation_next_to_a_lazy_kernel_is_the_trap() -> None:
    scalars = {
        DISTANCE_TAG: 1e-6,
        CHANGE_TAG: 1e-3,
        "regimescope/representation/cka_to_init/0": 0.45,
        "regimescope/kernel/distance_from_init/1": 0.5,
        "regimescope/kernel/share/1": 0.001,
        "regimescope/kernel/share/0": 0.999,
    }
    text = explain(_verdict(scalars, "lazy"), scalars)
    assert "Representation of `0` changed (CKA to init 0.45) while the NTK did not: not counted (theory.md 5.5)" in text
    assert "Layer `1` turned its own kernel block (S = 0.5) but carries 0.10% of the NTK" in text
    assert "no sign of it" in text


def test_patterns_and_forecast_are_appended() -> None:
    scalars = {DISTANCE_TAG: 0.01, "regimescope/activations/pattern_change/act": 0.25}
    text = explain(_verdict(scalars, "transitional"), scalars, "Forecast at step 0: rich (...)")
    assert "Activation patterns: 25.0% of on/off states flipped since init (`act`)." in text
    assert text.endswith("- Forecast at step 0: rich (...)")


def test_no_verdict_yet() -> None:
    assert explain(None, {}) == "No verdict yet: the monitor has not measured the kernel."


def test_monitor_explains_and_writes_the_explanation_at_every_verdict() -> None:
    setup = get("trap/representation").build()
    sink = rs.MemorySink()
    optimizer = torch.optim.SGD(setup.model.parameters(), lr=setup.lr)
    with rs.RegimeMonitor(setup.model, setup.probe, optimizer=optimizer, sinks=[sink], every=25, max_overhead=None) as monitor:
        for _ in range(setup.steps):
            loss = setup.loss_weight * 0.5 * (setup.model(setup.inputs) - setup.targets).square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        text = monitor.explain()
    steps, texts = sink.texts("regimescope/regime/explanation")
    assert steps == [r.step for r in sink.records if "regimescope/regime/score" in r.scalars]
    assert texts[-1] == text
    assert text.startswith("**lazy**") and "theory.md 5.5" in text
    assert "Forecast at step 0: lazy" in text


@pytest.mark.parametrize("label", ["lazy", "transitional", "rich"])
def test_every_label_has_a_meaning(label: str) -> None:
    scalars = {DISTANCE_TAG: 0.01}
    assert explain(_verdict(scalars, label), scalars).startswith(f"**{label}** at step 40")


def test_a_value_near_a_boundary_within_its_noise_is_called_uncertain() -> None:
    boundary = RAMPS["direction"].boundary(LAZY_BELOW)
    near = {DISTANCE_TAG: boundary * 1.05, noise_tag(DISTANCE_TAG): boundary * 0.1}
    far = {DISTANCE_TAG: boundary * 1.05, noise_tag(DISTANCE_TAG): boundary * 0.01}
    assert "Uncertain" in explain(_verdict(near, "lazy"), near)
    assert "Uncertain" not in explain(_verdict(far, "lazy"), far)
    assert "Uncertain" not in explain(_verdict({DISTANCE_TAG: boundary * 1.05}, "lazy"), {DISTANCE_TAG: boundary * 1.05})


def test_a_reduced_measurement_is_said() -> None:
    scalars = {DISTANCE_TAG: 0.2}
    text = explain(_verdict(scalars, "rich"), scalars, measurement="4 random combinations of the 2048 outputs")
    assert "Reduced measurement: 4 random combinations of the 2048 outputs" in text
