"""Probe: construction, deterministic drawing from loaders, tuples and dicts, validation against the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import regimescope as rs


def _loader(shuffle: bool = True) -> DataLoader:
    x = torch.arange(100, dtype=torch.float32).reshape(50, 2)
    y = torch.arange(50)
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=shuffle)


def test_from_loader_is_deterministic_and_takes_targets() -> None:
    a = rs.Probe.from_loader(_loader(), size=16, seed=3)
    b = rs.Probe.from_loader(_loader(shuffle=False), size=16, seed=3)
    c = rs.Probe.from_loader(_loader(), size=16, seed=4)
    assert a.size == 16
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    assert torch.equal(a.inputs[:, 0], 2 * a.targets.float())
    assert len(set(a.targets.tolist())) == 16


def test_from_loader_with_dict_batches_splits_labels() -> None:
    class Dicts(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 20

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": torch.full((5,), i), "labels": torch.tensor(i % 3)}

    probe = rs.Probe.from_loader(DataLoader(Dicts(), batch_size=4), size=6, seed=0)
    assert set(probe.inputs) == {"input_ids"}
    assert probe.inputs["input_ids"].shape == (6, 5)
    assert torch.equal(probe.targets, probe.inputs["input_ids"][:, 0] % 3)


def test_from_loader_over_an_iterable_dataset_takes_the_first_batches() -> None:
    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(30):
                yield torch.tensor([float(i)]), torch.tensor(i)

    probe = rs.Probe.from_loader(DataLoader(Stream(), batch_size=4), size=10)
    assert probe.inputs.squeeze(1).tolist() == [float(i) for i in range(10)]
    assert probe.targets.tolist() == list(range(10))


def test_probe_copies_its_tensors() -> None:
    x = torch.randn(4, 3)
    probe = rs.Probe(x)
    x.add_(1.0)
    assert not torch.equal(probe.inputs, x)


def test_tuple_inputs_reach_the_model_as_positional_arguments() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return self.a(u) + self.b(v)

    probe = rs.Probe((torch.randn(5, 3), torch.randn(5, 4)))
    assert probe.check(TwoInputs()) == 2


def test_check_reports_model_errors_with_shapes() -> None:
    probe = rs.Probe({"x": torch.randn(5, 3)})
    with pytest.raises(ValueError, match=r"input shapes \{'x': \(5, 3\)\}"):
        probe.check(nn.Linear(3, 2))


def test_targets_follow_the_inputs_device() -> None:
    probe = rs.Probe(torch.randn(4, 3, device="meta"), torch.tensor([0, 1, 0, 1]))
    assert probe.targets.device.type == "meta"


class _Counting(nn.Module):
    """A forward that updates state even in eval mode (a call counter next to a BatchNorm)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer, self.norm = nn.Linear(3, 4), nn.BatchNorm1d(4)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.norm(self.layer(x))


@pytest.mark.parametrize("mode", ["eval", "train", "batch_stats"])
def test_check_never_changes_the_model_and_records_the_output_shape(mode: str) -> None:
    model = _Counting()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    probe = rs.Probe(torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1]))
    assert probe.check(model, mode=mode) == 4
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())
    assert model.training
    assert probe.output_shape == (4,)
    assert probe.target_layout.value == "classes"


def test_one_hot_targets_are_accepted_as_one_hot() -> None:
    labels = torch.tensor([0, 2, 1, 2, 0, 1])
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(6, 3)
    values = []
    for targets in (labels, nn.functional.one_hot(labels, 3)):
        monitor = rs.RegimeMonitor(model, rs.Probe(x, targets)).attach()
        values.append(monitor.history[0].scalars["regimescope/kernel/target_alignment"])
        assert monitor.probe.target_layout.value == ("classes" if targets.dim() == 1 else "matrix")
    assert values[0] == pytest.approx(values[1], rel=1e-12)


def test_non_finite_targets_fail_the_check() -> None:
    probe = rs.Probe(torch.randn(4, 3), torch.tensor([[0.0], [float("nan")], [1.0], [2.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        probe.check(nn.Linear(3, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_targets_on_the_cpu_with_inputs_on_the_gpu_are_measured() -> None:
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 3)).cuda()
    probe = rs.Probe(torch.randn(6, 3, device="cuda"), torch.tensor([0, 1, 2, 0, 1, 2]))
    monitor = rs.RegimeMonitor(model, probe, strict=True).attach()
    assert probe.targets.device.type == "cuda"
    assert "regimescope/kernel/target_alignment" in monitor.history[0].scalars
