"""Running a test body in several gloo processes, failing (instead of hanging CI) when they do not finish."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

COLLECTIVE_TIMEOUT = timedelta(seconds=60)
"""A collective that waits longer than this raises in the worker, so a rank that never arrives fails the test."""


@contextlib.contextmanager
def process_group(rank: int, world: int, init_file: str) -> Iterator[None]:
    """Be one rank of a gloo job inside the block (one thread per process, as the suite runs).

    On leaving normally, ranks wait for each other before the group is destroyed: a rank that exits while another
    still talks to it can abort the other process.
    """
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT
    )
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()
        gc.collect()  # free gloo's finished work now: left to interpreter shutdown, torch 2.13 can abort (SIGABRT)


def run_ranks(fn: Callable[..., None], world: int, workdir: Path, *args: object, timeout: float = 180.0) -> None:
    """Run ``fn(rank, world, init_file, *args)`` in ``world`` spawned processes.

    Raises:
        Failed: When a process is still running after ``timeout`` seconds (they are killed), or when one raised.
    """
    context = mp.start_processes(
        fn, args=(world, str(workdir / "dist-init"), *args), nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world}-process job did not finish within {timeout:.0f} s: a rank hangs")
