"""RepresentationDrift and RepresentationAlignment on hand-built feature snapshots against the float64 CKA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import Need, Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.representation_alignment import RepresentationAlignment
from regimescope.indicators.representation_drift import RepresentationDrift
from regimescope.record import Record
from tests.reference import formulas as ref

N = 12
DRIFT = "regimescope/representation/cka_to_init"
ALIGNMENT = "regimescope/representation/target_alignment"


def _features(seed: int, widths: dict[str, int]) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {layer: torch.from_numpy(rng.standard_normal((N, d))).float() for layer, d in widths.items()}


def _context(targets: torch.Tensor | None) -> Context:
    return Context(model=nn.Linear(3, 1), probe=rs.Probe(torch.randn(N, 3), targets))


def _run(indicator: Indicator, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
    indicator.setup(context)
    return indicator.compute(current, reference, context)


@pytest.mark.parametrize(
    ("indicator", "reference"), [(RepresentationDrift(), Reference.INIT), (RepresentationAlignment(), Reference.NONE)]
)
def test_declares_features_and_its_reference_policy(indicator: Indicator, reference: Reference) -> None:
    assert indicator.needs == frozenset({Need.FEATURES})
    assert indicator.reference is reference


@pytest.mark.parametrize("widths", [{"a": 4}, {"a": 4, "b.0": 30}, {"x": 1, "y": 12, "z": 50}])
def test_drift_is_cka_to_the_init_features_per_layer(widths: dict[str, int]) -> None:
    init = Snapshot(0, features=_features(0, widths))
    now_features = {layer: f + 0.7 * g for (layer, f), g in zip(init.features.items(), _features(1, widths).values())}
    record = _run(RepresentationDrift(), Snapshot(9, features=now_features), init, _context(None))
    assert record.step == 9
    assert set(record.scalars) == {f"{DRIFT}/{layer}" for layer in widths}
    for layer in widths:
        expected = ref.linear_cka(ref.as_array(now_features[layer]), ref.as_array(init.features[layer]))
        assert record.scalars[f"{DRIFT}/{layer}"] == pytest.approx(expected, rel=1e-5)
        assert record.scalars[f"{DRIFT}/{layer}"] < 0.99


def test_drift_is_one_for_a_rotated_rescaled_and_shifted_representation() -> None:
    init = Snapshot(0, features=_features(2, {"h": 6}))
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 6)))
    moved = 3.0 * init.features["h"].double() @ torch.from_numpy(q) + 1.5
    record = _run(RepresentationDrift(), Snapshot(4, features={"h": moved.float()}), init, _context(None))
    assert record.scalars[f"{DRIFT}/h"] == pytest.approx(1.0, abs=1e-5)


def test_drift_skips_layers_missing_from_the_reference() -> None:
    init = Snapshot(0, features=_features(3, {"a": 3}))
    record = _run(RepresentationDrift(), Snapshot(2, features=_features(4, {"a": 3, "new": 5})), init, _context(None))
    assert set(record.scalars) == {f"{DRIFT}/a"}


def test_alignment_needs_targets() -> None:
    assert not RepresentationAlignment().applicable(_context(None))
    assert RepresentationAlignment().applicable(_context(torch.arange(N) % 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_with_class_labels_is_cka_to_the_one_hot_targets(seed: int) -> None:
    labels = torch.arange(N) % 3
    widths = {"a": 5, "b": 40}
    now = Snapshot(3, features=_features(seed, widths))
    record = _run(RepresentationAlignment(), now, None, _context(labels))
    assert set(record.scalars) == {f"{ALIGNMENT}/{layer}" for layer in widths}
    y = ref.one_hot(labels.numpy(), 3)
    for layer in widths:
        expected = ref.linear_cka(ref.as_array(now.features[layer]), y)
        assert record.scalars[f"{ALIGNMENT}/{layer}"] == pytest.approx(expected, rel=1e-5)


def test_alignment_with_float_targets_uses_them_as_columns() -> None:
    targets = torch.from_numpy(np.random.default_rng(5).standard_normal((N, 2)))
    now = Snapshot(3, features=_features(5, {"a": 7}))
    record = _run(RepresentationAlignment(), now, None, _context(targets))
    expected = ref.linear_cka(ref.as_array(now.features["a"]), targets.numpy())
    assert record.scalars[f"{ALIGNMENT}/a"] == pytest.approx(expected, rel=1e-5)


def test_alignment_is_one_for_features_that_encode_the_classes() -> None:
    labels = torch.arange(N) % 4
    q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((4, 4)))
    encoded = torch.from_numpy(2.0 * ref.one_hot(labels.numpy(), 4) @ q).float()
    record = _run(RepresentationAlignment(), Snapshot(1, features={"h": encoded}), None, _context(labels))
    assert record.scalars[f"{ALIGNMENT}/h"] == pytest.approx(1.0, abs=1e-5)
