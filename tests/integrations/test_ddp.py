"""RegimeMonitor under DistributedDataParallel (two gloo processes): every rank agrees, one writer, no hang.

By default rank 0 measures; with ``distributed="split_layers"`` every rank computes a share of the kernel blocks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import regimescope as rs
from regimescope.split_kernel import SplitKernelError, layer_assignment, split_layer_kernels
from tests.integrations._spawn import process_group, run_ranks
from tests.integrations._task import MEASURED_STEPS, net, probe, task, train

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")


def _run(rank: int, world: int, options: dict | None) -> tuple[nn.Module, rs.RegimeMonitor | None, list]:
    """Train a fresh DDP model; return the inner model, the monitor and its alerts."""
    model = net()
    monitor, alerts = train(rank, world, DistributedDataParallel(model), options)
    return model, monitor, alerts


def _agreement_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        plain, _, _ = _run(rank, world, None)
        model, monitor, alerts = _run(rank, world, {"logdir": Path(out) / "run", "every": 5})
        torch.save(
            {
                "plain": [p.detach() for p in plain.parameters()],
                "monitored": [p.detach() for p in model.parameters()],
                "history": [record.to_json() for record in monitor.history],
                "verdict": asdict(monitor.regime),
                "alerts": [(alert.step, alert.kind) for alert in alerts],
                "measured_kernel": (monitor.state_dict()["previous"] or {}).get("layer_kernels"),
                "replica_kernel": rs.empirical_ntk(model, probe().inputs, per_layer=True),
            },
            Path(out) / f"rank{rank}.pt",
        )


def test_every_rank_gets_the_same_verdict_history_and_alerts_and_only_rank0_writes(tmp_path: Path) -> None:
    run_ranks(_agreement_worker, 2, tmp_path, str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for results in (rank0, rank1):
        for plain, monitored in zip(results["plain"], results["monitored"]):
            assert torch.equal(plain, monitored)  # measuring left DDP training bit for bit unchanged
    assert [r["step"] for r in rank0["history"]] == MEASURED_STEPS
    assert rank1["history"] == rank0["history"]
    assert rank1["verdict"] == rank0["verdict"]
    assert rank1["alerts"] == rank0["alerts"]
    assert rank0["alerts"], "the run should move enough to raise an alert, so that alerts are compared at all"
    assert rank1["measured_kernel"] is None  # only rank 0 measures ...
    for name, kernel in rank0["measured_kernel"].items():  # ... the kernel that every replica has
        torch.testing.assert_close(rank1["replica_kernel"][name], kernel, rtol=1e-5, atol=1e-6)
    written = sorted(p.name.split(".")[0] for p in (tmp_path / "run").iterdir())
    assert written == ["events", "regimescope"]


def _unreadable(output: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("this output cannot be read")


def _failure_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        x, y = task()
        ddp = DistributedDataParallel(net())
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.2)
        monitor = rs.RegimeMonitor(ddp, probe(), optimizer=optimizer, every=2, max_overhead=None).attach()
        if rank == 0:
            monitor.config.output_fn = _unreadable  # measuring now fails on rank 0 only
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


def _split_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        results: dict = {}
        for sharing in ("rank0", "split_layers"):
            options = {"logdir": Path(out) / sharing, "every": 5, "distributed": sharing}
            model, monitor, _ = _run(rank, world, options)
            results[sharing] = {
                "history": [record.to_json() for record in monitor.history],
                "verdict": asdict(monitor.regime),
                "kernel": (monitor.state_dict()["previous"] or {}).get("layer_kernels"),
            }
        owners = layer_assignment(model, probe(), monitor.config)
        results["owners"] = owners
        results["split_kernel"] = split_layer_kernels(model, probe(), monitor.config, owners)
        results["replica_kernel"] = rs.empirical_ntk(model, probe().inputs, per_layer=True)
        torch.save(results, Path(out) / f"rank{rank}.pt")


def _measured(record: dict) -> dict[str, float]:
    """A record's scalars without the timings."""
    return {name: value for name, value in record["scalars"].items() if "/cost/" not in name}


def test_split_layers_gives_every_rank_the_kernel_and_rank0s_verdict(tmp_path: Path) -> None:
    run_ranks(_split_worker, 2, tmp_path, str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["owners"] == rank1["owners"]  # one assignment, every block exactly once
    assert list(rank0["owners"]) == list(rank0["replica_kernel"]) and set(rank0["owners"].values()) == {0, 1}
    for name, kernel in rank0["replica_kernel"].items():
        assert torch.equal(rank0["split_kernel"][name], rank1["split_kernel"][name])
        torch.testing.assert_close(rank0["split_kernel"][name], kernel, rtol=1e-5, atol=1e-6)
    split, alone = rank0["split_layers"], rank0["rank0"]
    for name, kernel in alone["kernel"].items():  # the kernel rank 0 measured alone, to float tolerance
        torch.testing.assert_close(split["kernel"][name], kernel, rtol=1e-5, atol=1e-6)
    assert [r["step"] for r in split["history"]] == MEASURED_STEPS
    for with_split, without in zip(split["history"], alone["history"]):
        measured = _measured(with_split)
        assert measured.keys() == _measured(without).keys()
        for name, value in _measured(without).items():
            assert measured[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
        assert with_split["scalars"]["regimescope/cost/seconds"] > 0
    assert split["verdict"]["label"] == alone["verdict"]["label"]
    assert split["verdict"]["score"] == pytest.approx(alone["verdict"]["score"], abs=1e-5)
    assert rank1["split_layers"]["history"] == split["history"] and rank1["split_layers"]["verdict"] == split["verdict"]
    assert rank1["split_layers"]["kernel"] is None  # rank 0 alone keeps references ...
    written = sorted(p.name.split(".")[0] for p in (tmp_path / "split_layers").iterdir())
    assert written == ["events", "regimescope"]  # ... and writes


def _share_failure_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        monitor = rs.RegimeMonitor(
            DistributedDataParallel(net()), probe(), distributed="split_layers", strict=True, max_overhead=None
        )
        monitor.attach()
        if rank == 1:
            monitor.config.output_fn = _unreadable  # rank 1's share of the blocks now fails
        try:
            monitor.measure(1)
            raised = "nothing"
        except SplitKernelError as error:
            raised = str(error)
        monitor.strict = False
        monitor.step(2)
        (Path(out) / f"rank{rank}.txt").write_text(f"{monitor.paused}\n{raised}")


def test_a_failure_in_one_ranks_share_raises_on_every_rank_without_a_hang(tmp_path: Path) -> None:
    run_ranks(_share_failure_worker, 2, tmp_path, str(tmp_path))
    for rank in (0, 1):
        paused, raised = (tmp_path / f"rank{rank}.txt").read_text().split("\n", 1)
        assert paused == "True"  # and without strict=True measuring pauses on every rank
        assert "failed (rank 1: " in raised and "rank 0:" not in raised
