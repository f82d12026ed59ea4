"""Time of one measurement's per-layer kernel with rank 0 computing it alone vs split across the ranks' layers.

Launches ``--ranks`` gloo processes on CPU, one torch thread each, and in one run times, on the same weights and
probe, the two ways :class:`regimescope.RegimeMonitor` can compute the per-layer NTK in a distributed job:

* ``rank0`` (the default ``distributed="rank0"``): rank 0 computes every block while the other ranks wait;
* ``split_layers``: every rank computes the blocks of its share (balanced by the engine's estimated multiply-adds)
  and one all-reduce sums them (``regimescope/split_kernel.py``).

Each time is the median of ``--repeat`` runs after one warm-up, from a barrier to the kernel being on every rank.
The kernels of the two ways are compared block by block. Models: the issue's 784-512-512-10 MLP and its CNN
(``benchmarks/models.py``) at n = ``--examples``.

Usage::

    python benchmarks/split_layers.py [--examples 128] [--repeat 5] [--ranks 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402

from regimescope.capture import CaptureConfig  # noqa: E402
from regimescope.capture.capture import layer_kernels  # noqa: E402
from regimescope.probe import Probe  # noqa: E402
from regimescope.split_kernel import layer_assignment, split_layer_kernels  # noqa: E402

CASES: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]] = {
    "MLP 784-512-512-10": (models.mlp, (784,)),
    "CNN (issue's)": (models.cnn, (3, 32, 32)),
}
"""Model builder and input shape (without the batch) of each row."""


Kernels = Optional[dict[str, torch.Tensor]]  # Optional: evaluated at runtime on Python 3.9


def _timed(fn: Callable[[], Kernels], repeat: int) -> tuple[float, Kernels]:
    """Median seconds of ``fn`` from a barrier to its end on every rank (after one warm-up), and its last result."""
    fn()
    times = []
    for _ in range(repeat):
        dist.barrier()
        start = time.perf_counter()
        result = fn()
        dist.barrier()  # the kernel is ready when the slowest rank is done
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _worker(rank: int, world: int, init_file: str, examples: int, repeat: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        lines = []
        for name, (build, shape) in CASES.items():
            torch.manual_seed(0)
            model = build()
            probe = Probe(torch.randn(examples, *shape))
            config = CaptureConfig()
            owners = layer_assignment(model, probe, config)
            alone, whole = _timed(lambda: layer_kernels(model, probe, config) if rank == 0 else None, repeat)
            split, shared = _timed(lambda: split_layer_kernels(model, probe, config, owners), repeat)
            if rank == 0:
                error = max(float((shared[k] - whole[k]).abs().max() / whole[k].abs().max()) for k in whole)
                shares = " | ".join(
                    ",".join(block for block, owner in owners.items() if owner == r) or "-" for r in range(world)
                )
                lines.append(
                    f"{name:<20} {examples:>4} {shares:<16} {alone:>9.3f} {split:>9.3f} {alone / split:>8.2f}x "
                    f"{error:>10.1e}"
                )
        if rank == 0:
            Path(out).write_text("\n".join(lines))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print one row per model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=128, help="probe size n")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per way (median reported)")
    parser.add_argument("--ranks", type=int, default=2, help="gloo processes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "rows.txt")
        mp.spawn(_worker, args=(args.ranks, str(Path(folder) / "init"), args.examples, args.repeat, out),
                 nprocs=args.ranks, join=True)
        rows = Path(out).read_text()
    print(f"per-layer trace NTK of one measurement, {args.ranks} gloo processes on CPU, 1 thread each, "
          f"median of {args.repeat}")
    print(f"{'model':<20} {'n':>4} {'blocks per rank':<16} {'rank0 s':>9} {'split s':>9} {'speed-up':>9} "
          f"{'max rel diff':>12}")
    print(rows)


if __name__ == "__main__":
    main()
