"""Sharing the kernel blocks among ranks: the assignment, the cost estimate and the option (one process).

The collective part (every rank's share, the all-reduce, a failing share) runs under two gloo processes in
``tests/integrations/test_ddp.py`` and ``tests/integrations/test_fsdp.py``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import regimescope as rs
from regimescope.ntk import plan_ntk
from regimescope.split_kernel import KernelSharing, assign_blocks, block_costs, parse_sharing
from tests import _models


def _best_largest_load(costs: dict[str, float], world: int) -> float:
    """The smallest possible largest load, by trying every assignment (the reference)."""
    loads = []
    for owners in itertools.product(range(world), repeat=len(costs)):
        load = [0.0] * world
        for owner, cost in zip(owners, costs.values()):
            load[owner] += cost
        loads.append(max(load))
    return min(loads)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("world", [2, 3])
def test_every_block_goes_to_one_rank_within_four_thirds_of_the_best_balance(seed: int, world: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    costs = {f"layer{i}": float(c) for i, c in enumerate(torch.randint(1, 100, (7,), generator=generator))}
    owners = assign_blocks(costs, world)
    assert list(owners) == list(costs)  # every block exactly once, in block order
    assert set(owners.values()) <= set(range(world))
    largest = max(sum(costs[name] for name, r in owners.items() if r == rank) for rank in range(world))
    assert largest <= 4 / 3 * _best_largest_load(costs, world)
    assert assign_blocks(dict(costs), world) == owners  # a pure function of the costs: the same on every rank


def test_ties_go_in_block_order_to_the_lowest_rank() -> None:
    assert assign_blocks({"a": 1, "b": 1, "c": 1}, 2) == {"a": 0, "b": 1, "c": 0}
    assert assign_blocks({"a": 1, "b": 5}, 4) == {"a": 1, "b": 0}  # ranks 2 and 3 get nothing
    assert assign_blocks({"a": 3, "b": 2}, 1) == {"a": 0, "b": 0}


def test_assignment_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="`world` must be a positive number of ranks; received 0"):
        assign_blocks({"a": 1}, 0)
    with pytest.raises(ValueError, match=r"negative costs for \['b'\]"):
        assign_blocks({"a": 1, "b": -1}, 2)


def test_block_costs_are_the_plans_multiply_adds_and_n2p_for_generic_blocks() -> None:
    model, x = _models.build("conv1d_net"), _models.inputs_for("conv1d_net", 4)
    plan = plan_ntk(model, x, per_layer=True)
    costs = block_costs(plan, 4)
    assert list(costs) == rs.ntk.layer_names(model)
    for block in plan.blocks:
        assert costs[block.name] == (block.flops if block.rule != "generic" else 16 * block.parameters)
    assert any(block.rule == "generic" for block in plan.blocks)


def test_the_option_names_the_allowed_values() -> None:
    assert parse_sharing("split_layers") is KernelSharing.SPLIT_LAYERS
    assert parse_sharing(KernelSharing.RANK0) is KernelSharing.RANK0
    with pytest.raises(ValueError, match=r"`distributed` must be one of 'rank0', 'split_layers'; received 'ddp'"):
        rs.RegimeMonitor(_models.build("mlp"), _models.inputs_for("mlp", 4), distributed="ddp")


def test_outside_a_distributed_job_split_layers_measures_like_rank0() -> None:
    x = _models.inputs_for("mlp", 8)
    histories = []
    for sharing in ("rank0", "split_layers"):
        model = _models.build("mlp")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        monitor = rs.RegimeMonitor(model, x, optimizer=optimizer, every=2, distributed=sharing, max_overhead=None).attach()
        for _ in range(4):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
        histories.append([{k: v for k, v in r.scalars.items() if "/cost/" not in k} for r in monitor.history])
    assert histories[0] == histories[1]
