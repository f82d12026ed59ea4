"""RegimeMonitor under DistributedDataParallel (two gloo processes): rank 0 measures, every rank agrees, one writer."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import regimescope as rs
from tests.integrations._spawn import process_group, run_ranks

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")

STEPS = 20


def _task() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=generator)
    return x, (x[:, :3] > 0).long().sum(1) % 3


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))


def _train(rank: int, world: int, monitor_options: dict | None) -> tuple[nn.Module, rs.RegimeMonitor | None, list]:
    """Train a DDP model ``STEPS`` steps on this rank's shard, with a monitor when options are given."""
    x, y = _task()
    model = _net()
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.2)
    alerts: list = []
    monitor = None
    if monitor_options is not None:
        probe = rs.Probe(x[:16], y[:16])
        monitor = rs.RegimeMonitor(ddp, probe, optimizer=optimizer, on_alert=alerts.append, **monitor_options)
        monitor.attach()
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(ddp(x[rank::world]), y[rank::world])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, monitor, alerts


def _agreement_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        plain, _, _ = _train(rank, world, None)
        model, monitor, alerts = _train(rank, world, {"logdir": Path(out) / "run", "every": 5})
        monitor.close()
        x, _ = _task()
        torch.save(
            {
                "plain": [p.detach() for p in plain.parameters()],
                "monitored": [p.detach() for p in model.parameters()],
                "history": [record.to_json() for record in monitor.history],
                "verdict": asdict(monitor.regime),
                "alerts": [(alert.step, alert.kind) for alert in alerts],
                "measured_kernel": (monitor.state_dict()["previous"] or {}).get("layer_kernels"),
                "replica_kernel": rs.empirical_ntk(model, x[:16], per_layer=True),
            },
            Path(out) / f"rank{rank}.pt",
        )


def test_every_rank_gets_the_same_verdict_history_and_alerts_and_only_rank0_writes(tmp_path: Path) -> None:
    run_ranks(_agreement_worker, 2, tmp_path, str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for results in (rank0, rank1):
        for plain, monitored in zip(results["plain"], results["monitored"]):
            assert torch.equal(plain, monitored)  # measuring left DDP training bit for bit unchanged
    assert [r["step"] for r in rank0["history"]] == [0, 1, 2, 4, 5, 10, 15, 20]
    assert rank1["history"] == rank0["history"]
    assert rank1["verdict"] == rank0["verdict"]
    assert rank1["alerts"] == rank0["alerts"]
    assert rank0["alerts"], "the run should move enough to raise an alert, so that alerts are compared at all"
    assert rank1["measured_kernel"] is None  # only rank 0 measures ...
    for name, kernel in rank0["measured_kernel"].items():  # ... the kernel that every replica has
        torch.testing.assert_close(rank1["replica_kernel"][name], kernel, rtol=1e-5, atol=1e-6)
    written = sorted(p.name.split(".")[0] for p in (tmp_path / "run").iterdir())
    assert written == ["events", "regimescope"]


def _failure_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        x, y = _task()
        ddp = DistributedDataParallel(_net())
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.2)
        monitor = rs.RegimeMonitor(ddp, rs.Probe(x[:16], y[:16]), optimizer=optimizer, every=2).attach()
        if rank == 0:
            monitor.probe = rs.Probe(torch.randn(16, 7))  # measuring now fails on rank 0 only
        for _ in range(4):
            loss = nn.functional.cross_entropy(ddp(x[rank::world]), y[rank::world])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        (Path(out) / f"rank{rank}.txt").write_text(f"{monitor.paused} {[r.step for r in monitor.history]}")


def test_a_failure_on_rank0_pauses_every_rank_without_a_hang(tmp_path: Path) -> None:
    run_ranks(_failure_worker, 2, tmp_path, str(tmp_path))
    assert (tmp_path / "rank0.txt").read_text() == "True [0]"
    assert (tmp_path / "rank1.txt").read_text() == "True [0]"


def _fsdp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        model = _net()
        mesh = init_device_mesh("cpu", (world,))
        for layer in (model[0], model[2], model[4]):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        x, _ = _task()
        try:
            rs.RegimeMonitor(model, rs.Probe(x[:16]))
            answer = "accepted"
        except ValueError as error:
            answer = str(error)
        (Path(out) / f"rank{rank}.txt").write_text(answer)


def test_fsdp_sharded_model_is_refused_on_every_rank_with_the_reason(tmp_path: Path) -> None:
    run_ranks(_fsdp_worker, 2, tmp_path, str(tmp_path))
    for rank in (0, 1):
        message = (tmp_path / f"rank{rank}.txt").read_text()
        assert "sharded across ranks" in message and "DistributedDataParallel" in message
