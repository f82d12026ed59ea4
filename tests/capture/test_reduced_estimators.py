"""Reduced measurements against the exact one: a random output projection and a smaller probe estimate the kernel
distance from init within the noise they report (the probe's jackknife, the projection's halves, in quadrature).

Four models: an MLP, a CNN with BatchNorm, a stack of residual BatchNorm blocks and a small causal transformer. Each
trains a few Adam steps so its kernel moves; the exact ``S(K_0, K_t)`` (every output, whole probe) is the reference.
One noise estimate is itself rough (the monitor smooths it over a window), so the projection check uses the root
mean square of eight seeds' estimates, as the window would, and the probe-size check is a rate over many probes.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regimescope.capture import CaptureConfig, Need, Snapshot, capture
from regimescope.indicators.base import Context
from regimescope.indicators.kernel_distance import KernelDistance
from regimescope.probe import Probe
from regimescope.tags import KERNEL_DISTANCE, noise_tag
from tests._models import build, inputs_for

SEEDS = range(8)
EXAMPLES = 32


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity, then ReLU (a torchvision BasicBlock without downsampling)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def resnet_blocks() -> nn.Module:
    """A stem, two residual blocks and a linear head; inputs ``(n, 3, 8, 8)``, 4 outputs."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        ResidualBlock(6), ResidualBlock(6), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    )


def causal_transformer() -> nn.Module:
    """The zoo's pre-norm transformer block (vocabulary head on every position: ``T x V`` outputs)."""
    return build("transformer_block")


MODELS = {
    "mlp": (lambda: build("mlp"), lambda n: inputs_for("mlp", n)),
    "cnn_bn": (lambda: build("cnn_bn"), lambda n: inputs_for("cnn_bn", n)),
    "resnet_blocks": (resnet_blocks, lambda n: torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(1))),
    "causal_transformer": (causal_transformer, lambda n: inputs_for("transformer_block", n)),
}


def _train(model: nn.Module, inputs: torch.Tensor, steps: int = 6) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        targets = torch.randn(model(inputs).shape, generator=generator)
    for _ in range(steps):
        loss = (model(inputs) - targets).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _distance(init: Snapshot, now: Snapshot, probe: Probe) -> tuple[float, float | None]:
    record = KernelDistance().compute(now, init, Context(model=nn.Identity(), probe=probe))
    return record.scalars[KERNEL_DISTANCE], record.scalars.get(noise_tag(KERNEL_DISTANCE))


@pytest.mark.parametrize("name", list(MODELS))
def test_a_projected_distance_agrees_with_the_exact_one_within_its_noise(name: str) -> None:
    """Eight projection seeds of four combinations on the same probe: each within four of the noise band."""
    make, make_inputs = MODELS[name]
    model = make()
    probe = Probe(make_inputs(EXAMPLES))
    exact = CaptureConfig(dtype=torch.float64)
    reduced = [CaptureConfig(dtype=torch.float64, output_projection=4, seed=seed) for seed in SEEDS]
    init_exact = capture(model, probe, {Need.KERNEL}, exact, 0)
    init_reduced = [capture(model, probe, {Need.KERNEL}, config, 0) for config in reduced]
    _train(model, make_inputs(EXAMPLES))
    s_exact, _ = _distance(init_exact, capture(model, probe, {Need.KERNEL}, exact, 6), probe)
    results = [
        _distance(start, capture(model, probe, {Need.KERNEL}, config, 6), probe)
        for start, config in zip(init_reduced, reduced)
    ]
    assert s_exact > 1e-4, "the kernel should have moved"
    assert all(noise is not None and noise > 0 for _, noise in results)
    band = math.sqrt(sum(noise**2 for _, noise in results) / len(results))
    errors = [abs(s - s_exact) for s, _ in results]
    assert max(errors) <= 4 * band, (s_exact, [s for s, _ in results], band)


@pytest.mark.parametrize("name", list(MODELS))
def test_half_the_probe_estimates_the_distance_within_its_jackknife_noise(name: str) -> None:
    """Over 60 random probes of 32 examples drawn from a pool, the first 16 examples' distance lies within three of
    its own noise of the whole probe's in at least 3 probes out of 4 (kernel indicators have heavy tails over
    examples: a probe missing the one example whose activation pattern flipped sees less movement). The kernels of a
    probe are sub-blocks of the pool's, so one exact computation serves every draw."""
    make, make_inputs = MODELS[name]
    model = make()
    pool = Probe(make_inputs(4 * EXAMPLES))
    config = CaptureConfig(dtype=torch.float64)
    start = capture(model, pool, {Need.KERNEL}, config, 0)
    _train(model, make_inputs(EXAMPLES))
    now = capture(model, pool, {Need.KERNEL}, config, 6)
    generator = torch.Generator().manual_seed(11)
    within = 0
    draws = 60
    for _ in range(draws):
        index = torch.randperm(4 * EXAMPLES, generator=generator)[:EXAMPLES]
        whole = _distance(_restricted(start, index), _restricted(now, index), pool)[0]
        first = index[: EXAMPLES // 2]
        value, noise = _distance(_restricted(start, first), _restricted(now, first), pool)
        within += abs(value - whole) <= 3 * noise
    assert within >= 0.75 * draws, within


def _restricted(snapshot: Snapshot, index: torch.Tensor) -> Snapshot:
    """The snapshot of the probe examples ``index`` (kernels restricted to those rows and columns)."""
    blocks = {name: k[index][:, index] for name, k in snapshot.layer_kernels.items()}
    return Snapshot(step=snapshot.step, layer_kernels=blocks)


def test_the_halves_of_a_projection_average_to_its_estimate() -> None:
    model, x = build("mlp"), inputs_for("mlp", 8)
    snapshot = capture(model, Probe(x), {Need.KERNEL}, CaptureConfig(dtype=torch.float64, output_projection=2), 0)
    for name, kernel in snapshot.layer_kernels.items():
        torch.testing.assert_close(snapshot.layer_kernel_halves[name].mean(0), kernel, rtol=1e-12, atol=1e-12)
    exact = capture(model, Probe(x), {Need.KERNEL}, CaptureConfig(dtype=torch.float64), 0)
    assert exact.layer_kernel_halves == {}
