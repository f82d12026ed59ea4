"""BatchNorm networks: the monitored function normalises with the probe's own statistics (``mode="batch_stats"``).

Running statistics are buffers, not features: a network whose weights stay put is lazy however its running
statistics move, a network whose weights move gets the verdict of its BatchNorm-free twin, and the running
statistics are reported under ``regimescope/normalization/``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import regimescope as rs

DISTANCE = "regimescope/kernel/distance_from_init"
CHANGE = "regimescope/kernel/relative_change"
RUNNING = "regimescope/normalization/running_change"
GAP = "regimescope/normalization/eval_gap"


def _fresh_bn_cnn() -> nn.Module:
    """Two Conv-BatchNorm-ReLU stages and a linear head; running statistics at their initial mean 0, variance 1."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )


def _images(n: int, generator: torch.Generator) -> torch.Tensor:
    return 10.0 * torch.randn(n, 3, 6, 6, generator=generator) + 2.0


def test_running_statistics_alone_leave_a_batchnorm_network_lazy() -> None:
    generator = torch.Generator().manual_seed(0)
    model = _fresh_bn_cnn()
    probe = rs.Probe(_images(8, generator), torch.arange(8) % 3)
    monitor = rs.RegimeMonitor(model, probe).attach()
    eval_mode = rs.RegimeMonitor(model, probe, mode="eval").attach()  # what running statistics do to eval mode
    gaps = []
    for step in (1, 2, 3):
        with torch.no_grad():  # train-mode forwards: the running statistics move, the weights do not
            model.train()
            for _ in range(10):
                model(_images(16, generator))
        before = copy.deepcopy(model.state_dict())
        monitor.measure(step)
        eval_mode.measure(step)
        after = model.state_dict()
        assert all(torch.equal(before[name], after[name]) for name in before)  # buffers are never touched
        scalars = monitor.history[-1].scalars
        assert scalars[DISTANCE] <= 1e-12 and scalars[CHANGE] <= 1e-6
        gaps.append(scalars[GAP])
    assert monitor.regime.label == "lazy" and monitor.regime.score == 0.0
    assert scalars[RUNNING] > 0.1  # reported as its own quantity
    assert gaps[-1] < gaps[0]  # the running statistics approach the probe's
    assert eval_mode.regime.label != "lazy"  # in eval mode the same buffers would pass for feature learning


class _Centred(nn.Module):
    """``alpha (f - f_0)``: Chizat et al.'s output-scaled model, lazy for large ``alpha``."""

    def __init__(self, net: nn.Module, alpha: float) -> None:
        super().__init__()
        self.net, self.alpha = net, alpha
        self.initial = copy.deepcopy(net).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * (self.net(x) - self.initial(x))


def _two_layer(batch_norm: bool, scale: float) -> nn.Module:
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(32) if batch_norm else nn.Identity()
    net = nn.Sequential(nn.Linear(4, 32), norm, nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net


SETTINGS = {
    # name: (alpha, initial scale, learning rate, steps, expected label)
    "lazy": (1000.0, 1.0, 0.05, 40, "lazy"),
    "rich": (None, 0.1, 0.5, 80, "rich"),
}


def _verdict(batch_norm: bool, setting: str) -> tuple[str, float]:
    alpha, scale, lr, steps, _ = SETTINGS[setting]
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(256, 4, generator=generator)
    y = torch.sin(2 * x[:, :1]) * x[:, 1:2]
    net = _two_layer(batch_norm, scale)
    model = net if alpha is None else _Centred(net, alpha)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    monitor = rs.RegimeMonitor(
        model, rs.Probe(x[:32], y[:32]), optimizer=optimizer, schedule=lambda step: step in (0, steps),
        max_overhead=None,
    ).attach()
    for _ in range(steps):
        batch = torch.randint(0, 256, (32,), generator=generator)
        loss = F.mse_loss(model(x[batch]), y[batch]) / (alpha or 1.0) ** 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    monitor.close()
    return monitor.regime.label, monitor.history[-1].scalars[DISTANCE]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_a_batchnorm_network_whose_weights_move_gets_the_verdict_of_its_twin(setting: str) -> None:
    expected = SETTINGS[setting][-1]
    with_norm, twin = _verdict(True, setting), _verdict(False, setting)
    assert with_norm[0] == twin[0] == expected, (with_norm, twin)


def _batch_function_kernel(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Float64 reference: ``J J^T`` traced over outputs, ``J`` the Jacobian of the whole-batch function."""
    reference = copy.deepcopy(model).double()
    params = {name: p.detach() for name, p in reference.named_parameters()}

    def outputs(p: dict[str, torch.Tensor]) -> torch.Tensor:
        buffers = {name: b.clone() for name, b in reference.named_buffers()}
        return torch.func.functional_call(reference, (p, buffers), (x.double(),))

    jacobian = torch.func.jacrev(outputs)(params)
    rows = torch.cat([j.reshape(x.shape[0], -1, p.numel()) for j, p in zip(jacobian.values(), params.values())], -1)
    return torch.einsum("iop,jop->ij", rows, rows)


@pytest.mark.parametrize("mode", ["eval", "batch_stats"])
def test_batchnorm_without_running_statistics_is_measured_as_the_batch_function(mode: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(10, 5)
    kernel = rs.empirical_ntk(model, x, mode=mode, dtype=torch.float64)
    expected = _batch_function_kernel(model.train(), x)
    torch.testing.assert_close(kernel, expected, rtol=1e-10, atol=1e-12)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = rs.RegimeMonitor(model, rs.Probe(x, torch.arange(10) % 3), optimizer=optimizer, mode=mode, every=1,
                                 max_overhead=None)
    monitor.attach()
    for _ in range(3):
        loss = F.cross_entropy(model(x), torch.arange(10) % 3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not monitor.paused
    assert [r.step for r in monitor.history] == [0, 1, 2, 3]
    assert monitor.regime is not None


def test_instance_norm_with_running_statistics_uses_each_examples_statistics() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3), nn.InstanceNorm1d(3, affine=True, track_running_stats=True), nn.ReLU(), nn.Flatten(),
        nn.Linear(18, 2),
    )
    x = torch.randn(5, 2, 8)
    kernel = rs.empirical_ntk(model, x, mode="batch_stats", dtype=torch.float64)
    torch.testing.assert_close(kernel, _batch_function_kernel(model.train(), x), rtol=1e-10, atol=1e-12)
