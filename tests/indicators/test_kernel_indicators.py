"""Kernel indicators on hand-built snapshots against the float64 formulas, and one end-to-end check on captures."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import CaptureConfig, Need, Snapshot, capture
from regimescope.indicators.activation_pattern import ActivationPatternChange
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.effective_rank import KernelEffectiveRank
from regimescope.indicators.kernel_alignment import KernelTargetAlignment
from regimescope.indicators.kernel_distance import KernelDistance
from regimescope.indicators.kernel_heatmap import KernelHeatmap
from regimescope.indicators.kernel_scale import KernelScale
from regimescope.indicators.kernel_velocity import KernelVelocity
from regimescope.indicators.layer_kernels import LayerKernels
from regimescope.indicators.representation_drift import RepresentationDrift
from regimescope.record import Record
from tests import _models
from tests.reference import formulas as ref
from tests.reference.ntk_reference import reference_ntk

N = 6
LAYERS = ("0", "2", "4")
DISTANCE = "regimescope/kernel/distance_from_init"
VELOCITY = "regimescope/kernel/velocity"
NOISE = "regimescope/noise/"


def _snapshot(step: int, seed: int, n: int = N) -> Snapshot:
    """Per-layer float32 PSD blocks of different sizes, as a float32 capture stores them."""
    blocks = {
        layer: torch.from_numpy(ref.random_psd(n, 3, 10 * seed + i) * 10.0**i).float() for i, layer in enumerate(LAYERS)
    }
    return Snapshot(step=step, layer_kernels=blocks)


def _whole(snapshot: Snapshot) -> np.ndarray:
    """The reference's own float64 sum of the blocks."""
    return sum(ref.as_array(k) for k in snapshot.layer_kernels.values())


def _context(targets: torch.Tensor | None = None, n: int = N) -> Context:
    return Context(model=nn.Linear(2, 1), probe=rs.Probe(torch.randn(n, 2), targets))


def _run(indicator: Indicator, current: Snapshot, reference: Snapshot | None, context: Context | None = None) -> Record:
    """The indicator's record without its noise estimates (``tests/indicators/test_noise.py`` checks those)."""
    context = context or _context()
    indicator.setup(context)
    record = indicator.compute(current, reference, context)
    record.scalars = {name: value for name, value in record.scalars.items() if not name.startswith(NOISE)}
    return record


@pytest.mark.parametrize(
    ("indicator", "reference"),
    [
        (KernelDistance(), Reference.INIT),
        (KernelScale(), Reference.INIT),
        (LayerKernels(), Reference.INIT),
        (KernelVelocity(), Reference.PREVIOUS),
        (KernelTargetAlignment(), Reference.NONE),
        (KernelEffectiveRank(), Reference.NONE),
        (KernelHeatmap(), Reference.NONE),
    ],
)
def test_declares_the_kernel_and_its_reference_policy(indicator: Indicator, reference: Reference) -> None:
    assert indicator.needs == frozenset({Need.KERNEL})
    assert indicator.reference is reference


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_distance_from_init_is_s_of_the_summed_kernels(seed: int) -> None:
    init, now = _snapshot(0, 0), _snapshot(10, seed)
    record = _run(KernelDistance(), now, init)
    assert record.step == 10
    assert set(record.scalars) == {DISTANCE}
    assert record.scalars[DISTANCE] == pytest.approx(ref.kernel_distance(_whole(init), _whole(now)), rel=1e-5)


def test_distance_from_init_uses_the_snapshot_it_is_given_not_the_latest() -> None:
    init, middle, now = _snapshot(0, 0), _snapshot(3, 1), _snapshot(10, 2)
    value = _run(KernelDistance(), now, init).scalars[DISTANCE]
    assert value == pytest.approx(ref.kernel_distance(_whole(init), _whole(now)), rel=1e-5)
    assert abs(value - ref.kernel_distance(_whole(middle), _whole(now))) > 1e-3


@pytest.mark.parametrize("seed", [1, 2])
def test_scale_matches_relative_change_and_norm_ratio(seed: int) -> None:
    init, now = _snapshot(0, 0), _snapshot(5, seed)
    now.layer_kernels = {k: 30.0 * v for k, v in now.layer_kernels.items()}
    scalars = _run(KernelScale(), now, init).scalars
    assert set(scalars) == {"regimescope/kernel/relative_change", "regimescope/kernel/norm_ratio"}
    k_0, k_t = _whole(init), _whole(now)
    assert scalars["regimescope/kernel/relative_change"] == pytest.approx(ref.relative_change(k_t, k_0), rel=1e-5)
    assert scalars["regimescope/kernel/norm_ratio"] == pytest.approx(ref.norm_ratio(k_t, k_0), rel=1e-5)


def test_scale_of_an_unchanged_kernel() -> None:
    init = _snapshot(0, 0)
    scalars = _run(KernelScale(), Snapshot(4, layer_kernels=dict(init.layer_kernels)), init).scalars
    assert scalars["regimescope/kernel/relative_change"] == 0.0
    assert scalars["regimescope/kernel/norm_ratio"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("previous_step", "step"), [(0, 1), (3, 10), (100, 1100)])
def test_velocity_is_the_angle_to_the_previous_kernel_per_step(previous_step: int, step: int) -> None:
    previous, now = _snapshot(previous_step, 1), _snapshot(step, 2)
    scalars = _run(KernelVelocity(), now, previous).scalars
    expected = ref.kernel_angle(_whole(previous), _whole(now)) / (step - previous_step)
    assert set(scalars) == {VELOCITY}
    assert scalars[VELOCITY] == pytest.approx(expected, rel=1e-5)


def test_velocity_is_absent_at_the_first_measurement_and_for_a_repeated_step() -> None:
    first = _snapshot(0, 0)
    assert _run(KernelVelocity(), first, None).scalars == {}
    assert _run(KernelVelocity(), _snapshot(5, 1), _snapshot(5, 2)).scalars == {}


def test_target_alignment_needs_targets() -> None:
    assert not KernelTargetAlignment().applicable(_context(None))
    assert KernelTargetAlignment().applicable(_context(torch.tensor([0, 1, 2, 0, 1, 2])))


@pytest.mark.parametrize(
    "targets",
    [torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 0, 0, 1, 1, 0]), torch.linspace(-1, 1, N), torch.randn(N, 2)],
)
def test_target_alignment_matches_reference(targets: torch.Tensor) -> None:
    now = _snapshot(7, 4)
    scalars = _run(KernelTargetAlignment(), now, None, _context(targets)).scalars
    t = targets.numpy()
    y = ref.one_hot(t, int(t.max()) + 1) if not targets.is_floating_point() else t.reshape(N, -1).astype(np.float64)
    expected = ref.kernel_alignment(_whole(now), y)
    assert scalars == {"regimescope/kernel/target_alignment": pytest.approx(expected, rel=1e-5)}


@pytest.mark.parametrize("seed", [0, 5])
def test_effective_rank_matches_reference(seed: int) -> None:
    now = _snapshot(2, seed)
    scalars = _run(KernelEffectiveRank(), now, None).scalars
    assert scalars == {"regimescope/kernel/effective_rank": pytest.approx(ref.effective_rank(_whole(now)), rel=1e-5)}


def test_layer_kernels_distances_and_shares() -> None:
    init, now = _snapshot(0, 0), _snapshot(8, 3)
    scalars = _run(LayerKernels(), now, init).scalars
    tags = {f"{DISTANCE}/{layer}" for layer in LAYERS} | {f"regimescope/kernel/share/{layer}" for layer in LAYERS}
    assert set(scalars) == tags
    total = np.trace(_whole(now))
    for layer in LAYERS:
        k_0, k_t = ref.as_array(init.layer_kernels[layer]), ref.as_array(now.layer_kernels[layer])
        assert scalars[f"{DISTANCE}/{layer}"] == pytest.approx(ref.kernel_distance(k_0, k_t), rel=1e-5)
        assert scalars[f"regimescope/kernel/share/{layer}"] == pytest.approx(np.trace(k_t) / total, rel=1e-6)
    assert sum(scalars[f"regimescope/kernel/share/{layer}"] for layer in LAYERS) == pytest.approx(1.0, abs=1e-9)
    assert scalars["regimescope/kernel/share/4"] > 0.9  # the blocks were built 10x apart


def test_layer_kernels_a_rescaled_layer_has_zero_distance() -> None:
    init = _snapshot(0, 0)
    now = Snapshot(3, layer_kernels={k: 4.0 * v if k == "2" else v for k, v in init.layer_kernels.items()})
    scalars = _run(LayerKernels(), now, init).scalars
    assert scalars[f"{DISTANCE}/2"] == pytest.approx(0.0, abs=1e-6)


def test_heatmap_is_emitted_every_every_th_call() -> None:
    heatmap, context = KernelHeatmap(every=3), _context()
    heatmap.setup(context)
    emitted = []
    for call in range(8):
        record = heatmap.compute(_snapshot(10 * call, call), None, context)
        assert not record.scalars
        if record.images:
            emitted.append(call)
            image = record.images["regimescope/kernel/heatmap"]
            assert image.dtype == np.uint8
            assert image.shape == (N, N, 3)
    assert emitted == [0, 3, 6]


def test_heatmap_every_one_emits_each_time_and_differs_between_kernels() -> None:
    heatmap, context = KernelHeatmap(every=1), _context()
    images = [heatmap.compute(_snapshot(s, s), None, context).images["regimescope/kernel/heatmap"] for s in (0, 1)]
    assert not np.array_equal(images[0], images[1])


@pytest.mark.parametrize("every", [0, -2])
def test_heatmap_rejects_a_non_positive_interval(every: int) -> None:
    with pytest.raises(ValueError, match=f"`every`.*{every}"):
        KernelHeatmap(every=every)


# ---------------------------------------------------------------------------------------- end to end on captures
E2E = {
    # name: (feature layers, pattern layers (ReLUs), learning rate, SGD steps): enough to move the kernel
    "mlp": (["1", "2", "3"], ["1", "3"], 0.2, 5),
    "cnn_bn": (["1", "2", "5"], ["2", "5"], 1.0, 20),
}


def _float64_prefix(model: nn.Sequential, inputs: torch.Tensor, layer: str) -> np.ndarray:
    """Output of module ``layer`` of a Sequential, by running the first layers of a float64 eval copy."""
    replica = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = replica[: int(layer) + 1](inputs.double())
    return out.reshape(out.shape[0], -1).numpy()


def _train(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, lr: float, steps: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("name", list(E2E))
def test_captured_numbers_match_float64_references(name: str) -> None:
    features, patterns, lr, steps = E2E[name]
    model = _models.build(name).eval()
    inputs = _models.inputs_for(name, 10)
    labels = torch.arange(10) % 3
    probe = rs.Probe(inputs, labels)
    needs = {Need.KERNEL, Need.FEATURES, Need.ACTIVATION_PATTERNS}
    config = CaptureConfig(feature_layers=features, pattern_layers=patterns, mode="eval")  # the reference's mode

    before = capture(model, probe, needs, config, step=0)
    k_0 = reference_ntk(model, inputs, per_layer=True)
    feats_0 = {layer: _float64_prefix(model, inputs, layer) for layer in features}
    _train(model, inputs, labels, lr, steps)
    after = capture(model, probe, needs, config, step=steps)
    k_t = reference_ntk(model, inputs, per_layer=True)
    feats_t = {layer: _float64_prefix(model, inputs, layer) for layer in features}

    context = Context(model=model, probe=probe)
    whole_0, whole_t = sum(k.numpy() for k in k_0.values()), sum(k.numpy() for k in k_t.values())
    distance = ref.kernel_distance(whole_0, whole_t)
    assert distance > 1e-4  # training moved the kernel, so the comparison below can fail
    assert _run(KernelDistance(), after, before, context).scalars[DISTANCE] == pytest.approx(distance, rel=1e-4)
    alignment = ref.kernel_alignment(whole_t, ref.one_hot(labels.numpy(), 3))
    assert _run(KernelTargetAlignment(), after, None, context).scalars[
        "regimescope/kernel/target_alignment"
    ] == pytest.approx(alignment, rel=1e-4)
    per_layer = _run(LayerKernels(), after, before, context).scalars
    assert set(after.layer_kernels) == set(k_t)
    for layer in k_t:
        assert per_layer[f"regimescope/kernel/share/{layer}"] == pytest.approx(
            np.trace(k_t[layer].numpy()) / np.trace(whole_t), rel=1e-4, abs=1e-7
        )

    drift = _run(RepresentationDrift(), after, before, context).scalars
    assert set(drift) == {f"regimescope/representation/cka_to_init/{layer}" for layer in features}
    for layer in features:
        expected = ref.linear_cka(feats_t[layer], feats_0[layer])
        assert expected < 1.0 - 1e-4
        # compared through 1 - CKA, the small part that training moved
        assert 1.0 - drift[f"regimescope/representation/cka_to_init/{layer}"] == pytest.approx(1.0 - expected, rel=1e-3)

    flips = _run(ActivationPatternChange(), after, before, context).scalars
    assert set(flips) == {f"regimescope/activations/pattern_change/{layer}" for layer in patterns}
    changed = 0.0
    for layer in patterns:
        expected = ref.pattern_change(feats_t[layer] > 0, feats_0[layer] > 0)
        changed += expected
        assert flips[f"regimescope/activations/pattern_change/{layer}"] == pytest.approx(expected, abs=1e-12)
    assert changed > 0.0


def test_layer_kernels_skip_the_distance_of_a_layer_absent_at_init() -> None:
    from regimescope.indicators.layer_kernels import LayerKernels

    eye = torch.eye(3)
    context = Context(model=nn.Linear(2, 2), probe=rs.Probe(torch.randn(3, 2)))
    scalars = LayerKernels().compute(
        Snapshot(1, layer_kernels={"a": eye, "b": 3 * eye}), Snapshot(0, layer_kernels={"a": eye}), context
    ).scalars
    assert "regimescope/kernel/distance_from_init/b" not in scalars
    assert scalars["regimescope/kernel/distance_from_init/a"] == 0.0
    assert scalars["regimescope/kernel/share/b"] == pytest.approx(0.75)
