"""Which process this is in a ``torch.distributed`` job, so that only the main process writes."""

from __future__ import annotations

import torch.distributed as dist


def _initialised() -> bool:
    """Whether ``torch.distributed`` is built into this torch and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default process group, or 1 outside a distributed job."""
    return dist.get_world_size() if _initialised() else 1


def rank() -> int:
    """Rank of this process in the default process group, or 0 outside a distributed job."""
    return dist.get_rank() if _initialised() else 0


def is_main_process() -> bool:
    """Whether this process should write results: rank 0 in a distributed job, always outside one.

    Use it only to gate writing; collectives must run on every rank, never inside a branch on this value.
    """
    return rank() == 0
