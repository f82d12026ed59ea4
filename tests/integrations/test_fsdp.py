"""RegimeMonitor on a model sharded by ``fully_shard`` (FSDP2, two gloo processes on CPU); the refused shardings."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

import regimescope as rs
from tests.integrations._spawn import process_group, run_ranks
from tests.integrations._task import MEASURED_STEPS, net, probe, train

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")


def _sharded(world: int) -> nn.Module:
    """:func:`net` with each linear layer and the root sharded by ``fully_shard`` over all ranks."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = net()
    mesh = init_device_mesh("cpu", (world,))
    for layer in (model[0], model[2], model[4]):
        fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def _unsharded(model: nn.Module) -> nn.Module:
    """A plain :func:`net` holding the full parameters of the sharded ``model`` (a collective)."""
    plain = net()
    plain.load_state_dict({name: p.full_tensor() for name, p in model.named_parameters()})
    return plain


def _fsdp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        results: dict = {"reference_init": rs.empirical_ntk(net(), probe().inputs, per_layer=True)}
        plain = _sharded(world)
        train(rank, world, plain, None)
        results["plain"] = _unsharded(plain).state_dict()
        for sharing in ("rank0", "split_layers"):
            model = _sharded(world)
            options = {"logdir": Path(out) / sharing, "every": 5, "distributed": sharing}
            monitor, _ = train(rank, world, model, options)
            state = monitor.state_dict()
            final = _unsharded(model)
            results[sharing] = {
                "trained": final.state_dict(),
                "reference": rs.empirical_ntk(final, probe().inputs, per_layer=True),
                "init": (state["init"] or {}).get("layer_kernels"),
                "kernel": (state["previous"] or {}).get("layer_kernels"),
                "history": [record.to_json() for record in monitor.history],
                "verdict": asdict(monitor.regime),
            }
        torch.save(results, Path(out) / f"rank{rank}.pt")


def test_a_fully_sharded_model_is_measured_from_every_ranks_shards(tmp_path: Path) -> None:
    run_ranks(_fsdp_worker, 2, tmp_path, str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for sharing in ("rank0", "split_layers"):
        measured = rank0[sharing]
        for name, p in rank0["plain"].items():
            assert torch.equal(measured["trained"][name], p)  # measuring left FSDP training bit for bit unchanged
        for stored, reference in (("init", "reference_init"), ("kernel", None)):
            expected = rank0[reference] if reference else measured["reference"]
            assert measured[stored].keys() == expected.keys()
            for name, kernel in expected.items():
                torch.testing.assert_close(measured[stored][name], kernel, rtol=1e-5, atol=1e-6)
        assert [r["step"] for r in measured["history"]] == MEASURED_STEPS
        assert rank1[sharing]["history"] == measured["history"] and rank1[sharing]["verdict"] == measured["verdict"]
        assert rank1[sharing]["kernel"] is None
        assert sorted(p.name.split(".")[0] for p in (tmp_path / sharing).iterdir()) == ["events", "regimescope"]
    assert rank0["split_layers"]["verdict"]["label"] == rank0["rank0"]["verdict"]["label"]


def _refusal_worker(rank: int, world: int, init_file: str, out: str) -> None:
    with process_group(rank, world, init_file):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

        tensor_parallel = parallelize_module(
            net(), init_device_mesh("cpu", (world,)), {"0": ColwiseParallel(), "2": RowwiseParallel()}
        )
        answers = []
        for model in (FullyShardedDataParallel(net(), device_id=torch.device("cpu")), tensor_parallel):
            try:
                rs.RegimeMonitor(model, probe())
                answers.append("accepted")
            except ValueError as error:
                answers.append(str(error))
        (Path(out) / f"rank{rank}.txt").write_text("\n".join(answers))


def test_fsdp1_and_tensor_parallel_models_are_refused_on_every_rank_with_the_reason(tmp_path: Path) -> None:
    run_ranks(_refusal_worker, 2, tmp_path, str(tmp_path))
    for rank in (0, 1):
        fsdp1, tensor_parallel = (tmp_path / f"rank{rank}.txt").read_text().split("\n")
        assert "FullyShardedDataParallel (FSDP1" in fsdp1 and "fully_shard" in fsdp1
        assert "tensor parallelism" in tensor_parallel and "unsharded copy" in tensor_parallel
