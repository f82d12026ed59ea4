"""Watch the regime of a DistributedDataParallel run: every rank calls the monitor, rank 0 measures and writes.

Each process trains the same DDP model on its shard of a synthetic teacher-student task. The monitor is given the
DDP wrapper and measures its inner module (no DDP hooks or collectives run while measuring); rank 0's record,
verdict and alerts are broadcast, so every rank prints the same verdict, and only rank 0 writes logs. With
``--split-layers`` every rank computes the kernel blocks of a share of the layers and one all-reduce sums them
(``RegimeMonitor(distributed="split_layers")``); by default rank 0 computes the whole kernel.

Run on CPU with two processes (gloo)::

    torchrun --nproc_per_node 2 examples/ddp.py [--logdir runs/ddp] [--split-layers] [--quick]
    tensorboard --logdir runs/ddp
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import regimescope as rs
from regimescope.verdict import Verdict

QUICK_BUDGET = {"max_overhead": None}
"""``--quick`` runs a few steps of milliseconds each, too short for the default overhead budget to earn a second
measurement: they keep the fixed schedule so the tests see the curves. Full runs keep the default budget."""


def teacher_student(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and the outputs of a fixed random two-layer ReLU teacher (the same on every rank)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=generator)
    teacher_in = torch.randn(10, 4, generator=generator)
    teacher_out = torch.randn(4, 1, generator=generator)
    return x, torch.relu(x @ teacher_in) @ teacher_out


def main(argv: Sequence[str] | None = None) -> Verdict | None:
    """Train under DDP, print this rank's verdict, and return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="runs/ddp")
    parser.add_argument("--split-layers", action="store_true",
                        help="every rank computes a share of the kernel's layer blocks (distributed='split_layers')")
    parser.add_argument("--quick", action="store_true", help="a few steps only (used by the tests)")
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        raise SystemExit("Launch this example with torchrun: torchrun --nproc_per_node 2 examples/ddp.py")

    dist.init_process_group("gloo")
    try:
        verdict = _train(args)
        dist.barrier()  # every rank is done with every collective before the group goes
        return verdict
    finally:
        dist.destroy_process_group()
        gc.collect()  # free gloo's finished work now: left to interpreter shutdown, torch 2.13 can abort (SIGABRT)


def _train(args: argparse.Namespace) -> Verdict | None:
    """Train and print this rank's verdict; the DDP model and the monitor are freed when this returns, before the
    process group is destroyed (a DDP reducer outliving its group can abort the process at exit)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.1)  # a small initialisation: the network will have to learn features
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    x, y = teacher_student()
    probe = rs.Probe(x[:64], y[:64])
    steps, every = (8, 4) if args.quick else (2000, 100)
    sharing = "split_layers" if args.split_layers else "rank0"
    with rs.RegimeMonitor(
        ddp, probe, optimizer=optimizer, logdir=args.logdir, every=every, distributed=sharing,
        **QUICK_BUDGET if args.quick else {},
    ) as monitor:
        for _ in range(steps):
            loss = (ddp(x[rank::world]) - y[rank::world]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    verdict = monitor.regime
    for turn in range(world):  # one rank after the other, so that the ranks' lines do not interleave
        if rank == turn:
            print(f"rank {rank}: regime after {steps} steps: {verdict}", flush=True)
        dist.barrier()
    if rank == 0:
        print(f"see the curves with: tensorboard --logdir {args.logdir}", flush=True)
    return verdict

if __name__ == "__main__":
    main()
