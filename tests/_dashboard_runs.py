"""Small realistic runs for the dashboard, layout and report tests: what a user's logdir holds.

:func:`write_runs` trains, with a :class:`~regimescope.RegimeMonitor` writing TensorBoard and JSONL logs:

- ``mlp/rich``: a small-init ReLU MLP that leaves the lazy regime (regime-shift alert, balance diagnosis);
- ``mlp/lazy``: the same MLP at a large scale, which stays lazy;
- ``resnet``: a narrow ResNet-18 (:func:`narrow_resnet`: 41 parameter layers in 11 blocks), the model whose panels
  need per-block summaries;
- ``a-run-with-a-rather-long-name-that-a-sidebar-would-cut/paused``: a run whose monitor paused at its first
  measurement (an indicator ran out of memory), so it holds nothing but the error.

:class:`~regimescope.scenarios.resnet.ResNet18` has torchvision's module names (``conv1``, ``bn1``,
``layer1.0.conv1`` ... ``layer4.1.downsample.0``, ``fc``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import Need, Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.record import Record
from regimescope.scenarios.resnet import ResNet18

RUNS = ("a-run-with-a-rather-long-name-that-a-sidebar-would-cut/paused", "mlp/lazy", "mlp/rich", "resnet")
"""The runs :func:`write_runs` writes, as TensorBoard and the report name them (sorted)."""
PAUSED = RUNS[0]


def narrow_resnet() -> nn.Module:
    """ResNet-18's layout for small images with 2 channels in its first stage and 3 classes."""
    return ResNet18(classes=3, width=2, small_inputs=True, torchvision_init=False)


class OutOfMemory(Indicator):
    """A user's indicator that runs out of memory, as a measurement on a crowded GPU can: the monitor pauses."""

    name = "out_of_memory"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, folder: Path, steps: int, lr: float, **kwargs) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    kwargs.setdefault("max_overhead", None)  # the dashboard shows every scheduled measurement
    with rs.RegimeMonitor(model, rs.Probe(x[:16], y[:16]), optimizer=optimizer, logdir=folder, **kwargs):
        for _ in range(steps):
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _mlp(scale: float) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(scale)
    return model


def write_runs(logdir: Path) -> Path:
    """Write the runs of :data:`RUNS` under ``logdir`` and return it.

    Torch runs on one thread meanwhile (these models are tiny: on a loaded machine, handing work between threads
    costs ten times the work), and the caller's thread count and random state are restored.
    """
    with one_thread():
        _write_runs(logdir)
    return logdir


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (the caller's thread count is restored)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _write_runs(logdir: Path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(32, 3)
        y = x[:, :1] - 2 * x[:, 1:2]
        _train(_mlp(0.05), x, y, logdir / "mlp" / "rich", steps=96, lr=0.2, every=16, heatmap_every=3)
        _train(_mlp(3.0), x, y, logdir / "mlp" / "lazy", steps=96, lr=0.002, every=16, heatmap_every=3)
        images = torch.randn(16, 3, 8, 8)
        _train(narrow_resnet(), images, torch.randn(16, 3), logdir / "resnet", steps=8, lr=0.05, every=4)
        paused = _mlp(1.0)
        optimizer = torch.optim.SGD(paused.parameters(), lr=0.1)
        indicators = [*default_indicators(), OutOfMemory()]
        with rs.RegimeMonitor(paused, rs.Probe(x[:16], y[:16]), optimizer=optimizer, logdir=logdir / PAUSED,
                              indicators=indicators):
            pass


_SHARED: dict[str, Path] = {}


def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs of :func:`write_runs`, written once per test session for every test module that reads them."""
    if "runs" not in _SHARED:
        _SHARED["runs"] = write_runs(tmp_path_factory.mktemp("dashboard-runs"))
    return _SHARED["runs"]
