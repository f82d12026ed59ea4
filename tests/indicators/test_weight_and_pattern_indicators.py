"""WeightChange and ActivationPatternChange on hand-built snapshots against the float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import Need, Snapshot
from regimescope.indicators.activation_pattern import ActivationPatternChange
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.weight_change import WeightChange
from regimescope.record import Record
from tests.reference import formulas as ref

WEIGHTS = "regimescope/weights/relative_change"
PATTERNS = "regimescope/activations/pattern_change"


class Net(nn.Module):
    """A root parameter, a nested Sequential with a bias-free layer, and a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4, bias=False))
        self.frozen = nn.Linear(4, 2)
        self.frozen.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frozen(self.body(x * self.scale))


OWNERS = {"(root)": ["scale"], "body.0": ["body.0.weight", "body.0.bias"], "body.2": ["body.2.weight"]}


def _weights(model: nn.Module, seed: int, noise: float) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        name: (p.detach() + noise * torch.from_numpy(rng.standard_normal(tuple(p.shape))).float()).clone()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def _context(model: nn.Module, n: int = 4) -> Context:
    return Context(model=model, probe=rs.Probe(torch.randn(n, 3)))


def _run(indicator: Indicator, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
    indicator.setup(context)
    return indicator.compute(current, reference, context)


@pytest.mark.parametrize(
    ("indicator", "need"), [(WeightChange(), Need.WEIGHTS), (ActivationPatternChange(), Need.ACTIVATION_PATTERNS)]
)
def test_declares_its_need_and_the_init_reference(indicator: Indicator, need: Need) -> None:
    assert indicator.needs == frozenset({need})
    assert indicator.reference is Reference.INIT


@pytest.mark.parametrize("noise", [1e-3, 0.1, 2.0])
def test_weight_change_per_owning_module(noise: float) -> None:
    torch.manual_seed(0)
    model = Net()
    init = Snapshot(0, weights=_weights(model, 0, 0.0))
    now = Snapshot(7, weights=_weights(model, 1, noise))
    record = _run(WeightChange(), now, init, _context(model))
    assert record.step == 7
    assert set(record.scalars) == {f"{WEIGHTS}/{layer}" for layer in OWNERS}
    for layer, names in OWNERS.items():
        expected = ref.weight_change(
            [ref.as_array(now.weights[n]) for n in names], [ref.as_array(init.weights[n]) for n in names]
        )
        assert record.scalars[f"{WEIGHTS}/{layer}"] == pytest.approx(expected, rel=1e-5)


def test_weight_change_pools_a_layers_parameters_rather_than_averaging_them() -> None:
    torch.manual_seed(1)
    model = Net()
    init = Snapshot(0, weights=_weights(model, 0, 0.0))
    moved = dict(init.weights)
    moved["body.0.bias"] = 2.0 * init.weights["body.0.bias"]  # only the bias moves, by its own norm
    record = _run(WeightChange(), Snapshot(1, weights=moved), init, _context(model))
    weight, bias = init.weights["body.0.weight"].double(), init.weights["body.0.bias"].double()
    expected = float(bias.norm() / torch.cat([weight.reshape(-1), bias]).norm())
    assert record.scalars[f"{WEIGHTS}/body.0"] == pytest.approx(expected, rel=1e-6)
    assert record.scalars[f"{WEIGHTS}/body.2"] == 0.0


def test_weight_change_is_zero_without_movement_and_scales_linearly() -> None:
    model = Net()
    init = Snapshot(0, weights=_weights(model, 0, 0.0))
    unchanged = _run(WeightChange(), Snapshot(1, weights=dict(init.weights)), init, _context(model))
    assert set(unchanged.scalars.values()) == {0.0}
    doubled = {n: 2.0 * w for n, w in init.weights.items()}
    values = _run(WeightChange(), Snapshot(2, weights=doubled), init, _context(model)).scalars.values()
    assert all(v == pytest.approx(1.0, rel=1e-6) for v in values)


def _patterns(seed: int, shapes: dict[str, tuple[int, int]], p: float = 0.5) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {layer: torch.from_numpy(rng.random(shape) < p) for layer, shape in shapes.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pattern_change_is_the_fraction_of_flipped_states(seed: int) -> None:
    shapes = {"1": (8, 16), "features.3": (8, 5)}
    init = Snapshot(0, activation_patterns=_patterns(seed, shapes))
    now = Snapshot(5, activation_patterns=_patterns(seed + 10, shapes, p=0.3))
    record = _run(ActivationPatternChange(), now, init, _context(nn.Linear(3, 1), n=8))
    assert set(record.scalars) == {f"{PATTERNS}/{layer}" for layer in shapes}
    for layer in shapes:
        expected = ref.pattern_change(now.activation_patterns[layer].numpy(), init.activation_patterns[layer].numpy())
        assert record.scalars[f"{PATTERNS}/{layer}"] == pytest.approx(expected, abs=1e-12)


def test_pattern_change_counts_exact_flips() -> None:
    start = torch.zeros(4, 5, dtype=torch.bool)
    now = start.clone()
    now[0, 0], now[3, 4], now[2, 1] = True, True, True
    init, context = Snapshot(0, activation_patterns={"r": start}), _context(nn.Linear(3, 1))

    def change(pattern: torch.Tensor) -> float:
        return _run(ActivationPatternChange(), Snapshot(1, activation_patterns={"r": pattern}), init, context).scalars[
            f"{PATTERNS}/r"
        ]

    assert change(now) == pytest.approx(3 / 20, abs=1e-15)
    assert change(~start) == 1.0
    assert change(start.clone()) == 0.0


def test_pattern_change_skips_layers_absent_from_init_or_of_another_shape() -> None:
    init = Snapshot(0, activation_patterns=_patterns(0, {"a": (4, 3), "b": (4, 3)}))
    now = Snapshot(1, activation_patterns=_patterns(1, {"a": (4, 3), "b": (4, 6), "c": (4, 2)}))
    record = _run(ActivationPatternChange(), now, init, _context(nn.Linear(3, 1)))
    assert set(record.scalars) == {f"{PATTERNS}/a"}


def test_a_zero_initialised_layer_reports_its_absolute_change_not_an_infinite_ratio() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    context = _context(model)
    indicator = WeightChange()
    indicator.setup(context)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    moved = {name: t + 0.5 for name, t in start.items()}
    scalars = indicator.compute(Snapshot(1, weights=moved), Snapshot(0, weights=start), context).scalars
    assert set(scalars) == {"regimescope/weights/relative_change/0", "regimescope/weights/change/1"}
    assert scalars["regimescope/weights/change/1"] == pytest.approx(0.5 * 6**0.5)  # 6 entries moved by 0.5
    unmoved = indicator.compute(Snapshot(1, weights=start), Snapshot(0, weights=start), context).scalars
    assert unmoved["regimescope/weights/change/1"] == 0.0
