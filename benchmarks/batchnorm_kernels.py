"""Which function to monitor in a BatchNorm network: the measurements behind ``mode="batch_stats"``.

A narrow CIFAR-layout ResNet (torchvision's basic blocks, ``regimescope.scenarios.resnet``, widths 8-16-32, 16x16 inputs, 10 classes, seeded
synthetic data) is measured with three candidate definitions of the monitored function:

* ``eval``: every module in eval mode, BatchNorm normalising with its running statistics (regimescope < 0.2);
* ``batch_stats``: BatchNorm normalising with the probe's own batch statistics, differentiated through them (the
  function training differentiates), dropout off (the default now);
* ``frozen``: eval mode with the running statistics replaced by the probe's statistics at the current weights,
  held constant (examples independent, so the cheap per-example engine paths apply).

It prints: (1) the kernel change that running statistics alone cause (initial weights, running statistics of a
model trained ``--artefact-steps`` steps); (2) the distance between the ``batch_stats`` and ``frozen`` kernels at
the same weights; (3) kernel distance, relative change and richness score along standard training (SGD, lr 0.05,
momentum 0.9) and lazy training (the output-scaled centred model alpha (f - f_0), alpha = 100, loss / alpha^2),
each next to the same network without BatchNorm; (4) the seconds per kernel of each definition.

Usage::

    python benchmarks/batchnorm_kernels.py [--probe 16] [--steps 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))


import regimescope as rs  # noqa: E402
from regimescope.functional.kernel_distance import kernel_distance, relative_change  # noqa: E402
from regimescope.scenarios.resnet import BasicBlock  # noqa: E402
from regimescope.verdict.score import CHANGE_TAG, DISTANCE_TAG, richness_score  # noqa: E402

CLASSES, SIZE = 10, 16


class NarrowResNet(nn.Module):
    """3x3 stem, three stages of two basic blocks (widths ``w, 2w, 4w``), average pool, linear head."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for cout, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, 10)``."""
        return self.fc(self.layers(F.relu(self.bn1(self.conv1(x)))).mean((2, 3)))


def without_batchnorm(model: nn.Module) -> nn.Module:
    """The same network with every BatchNorm replaced by the identity (its BatchNorm-free twin)."""
    for name, module in list(model.named_children()):
        if isinstance(module, nn.BatchNorm2d):
            setattr(model, name, nn.Identity())
        else:
            without_batchnorm(module)
    return model


def network(batch_norm: bool) -> nn.Module:
    torch.manual_seed(0)
    model = NarrowResNet()
    return model if batch_norm else without_batchnorm(model)


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy class templates (the same templates for every seed), shifted off zero mean."""
    templates = torch.randn(CLASSES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1234))
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=generator)
    return templates[y] + torch.randn(n, 3, SIZE, SIZE, generator=generator) + 0.5, y


def frozen_statistics(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy in eval mode whose running statistics are the probe's batch statistics at the current weights."""
    work = copy.deepcopy(model).train()
    seen: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module: nn.Module, args: tuple) -> None:
        z = args[0]
        seen[module] = (z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False))

    handles = [m.register_forward_pre_hook(record) for m in work.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        work(x)
        for module, (mean, var) in seen.items():
            module.running_mean.copy_(mean)
            module.running_var.copy_(var)
    for handle in handles:
        handle.remove()
    return work.eval()


CANDIDATES: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "eval": lambda m, x: rs.empirical_ntk(m, x, mode="eval"),
    "batch_stats": lambda m, x: rs.empirical_ntk(m, x, mode="batch_stats"),
    "frozen": lambda m, x: rs.empirical_ntk(frozen_statistics(m, x), x, mode="eval"),
}


def score(k0: torch.Tensor, k: torch.Tensor) -> tuple[float, float, float]:
    s, r = float(kernel_distance(k0, k)), float(relative_change(k0, k))
    return s, r, richness_score({DISTANCE_TAG: s, CHANGE_TAG: r})


def artefact(probe: torch.Tensor, steps: int) -> None:
    """Initial weights with the running statistics of a model trained ``steps`` steps, against the initial model."""
    initial = network(True)
    trained = copy.deepcopy(initial)
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = data(64, 100 + step)
        loss = F.cross_entropy(trained(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mixed = copy.deepcopy(initial)
    mixed.load_state_dict({**initial.state_dict(), **dict(trained.named_buffers())})
    print(f"(1) initial weights, running statistics after {steps} steps:")
    for name, kernel in CANDIDATES.items():
        s, r, e = score(kernel(initial, probe), kernel(mixed, probe))
        print(f"    {name:12s} S = {s:.3g}  relative change = {r:.3g}  score = {e:.2f}")


def trajectory(setting: str, batch_norm: bool, probe: torch.Tensor, steps: int, measured: list[int]) -> None:
    alpha = 100.0 if setting == "lazy" else None
    model = network(batch_norm)
    initial = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    names = list(CANDIDATES) if batch_norm else ["eval"]
    k0 = {name: CANDIDATES[name](model, probe) for name in names}
    for step in range(1, steps + 1):
        x, y = data(64, 100 + step)
        f = model(x)
        if alpha is None:
            loss = F.cross_entropy(f, y)
        else:
            with torch.no_grad():
                f0 = initial.train()(x)
            loss = F.cross_entropy(alpha * (f - f0), y) / alpha**2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in measured:
            for name in names:
                s, r, e = score(k0[name], CANDIDATES[name](model, probe))
                twin = "with BN" if batch_norm else "no BN  "
                print(f"    {setting:8s} {twin} step {step:4d} {name:12s} S = {s:.3g}  R = {r:.3g}  score = {e:.2f}",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probe", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--artefact-steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    probe, _ = data(args.probe, 1)
    artefact(probe, args.artefact_steps)
    model = network(True)
    batch, frozen = CANDIDATES["batch_stats"](model, probe), CANDIDATES["frozen"](model, probe)
    print(f"(2) at initialisation, batch_stats vs frozen kernels: S = {float(kernel_distance(batch, frozen)):.3g}, "
          f"|K_frozen| / |K_batch_stats| = {float(frozen.norm() / batch.norm()):.3g}")
    print("(3) training (S, R: kernel distance and relative change from step 0; score: richness score):")
    measured = sorted({4, 16, 64, args.steps})
    for setting in ("standard", "lazy"):
        for batch_norm in (True, False):
            trajectory(setting, batch_norm, probe, args.steps, measured)
    print("(4) seconds per kernel (median of 3):")
    for name, kernel in CANDIDATES.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            kernel(model, probe)
            times.append(time.perf_counter() - start)
        print(f"    {name:12s} {sorted(times)[1]:.2f} s")


if __name__ == "__main__":
    main()
