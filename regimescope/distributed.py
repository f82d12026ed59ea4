"""Which process this is in a ``torch.distributed`` job, and how rank 0's work reaches every rank.

Rules every caller keeps: every rank calls the same collectives in the same order; a collective is never inside a
branch on the rank (that is how jobs hang); only the main process writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


class MainProcessError(RuntimeError):
    """Raised on ranks other than 0 when the work rank 0 did for every rank (:func:`from_main_process`) failed."""


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


def from_main_process(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its result on every rank.

    Every rank must call this function at the same point (it holds one broadcast); ``fn`` itself must hold no
    collective. The result travels pickled (``torch.distributed.broadcast_object_list``), so it should be small:
    records and verdicts, not models. An exception in ``fn`` is sent to the other ranks before it is raised, so
    no rank waits forever. Outside a distributed job this simply returns ``fn()``.

    Args:
        fn: The work to do once, on rank 0.

    Returns:
        ``fn()``'s result, on every rank.

    Raises:
        Exception: On rank 0, whatever ``fn`` raised.
        MainProcessError: On the other ranks, when ``fn`` raised on rank 0 (the message names rank 0's error).
    """
    if world_size() == 1:
        return fn()
    outcome: list[Any] = [None]
    failure: Exception | None = None
    if is_main_process():
        try:
            outcome[0] = (fn(), None)
        except Exception as error:
            failure = error
            outcome[0] = (None, f"{type(error).__name__}: {error}")
    dist.broadcast_object_list(outcome, src=0)
    result, message = outcome[0]
    if failure is not None:
        raise failure
    if message is not None:
        raise MainProcessError(f"The measurement on rank 0 failed ({message}); see rank 0's log for the traceback.")
    return result

