"""The sinks a monitor writes under its ``logdir``: every point as JSON lines, and TensorBoard event files."""

from __future__ import annotations

import os
from pathlib import Path

from regimescope.sinks.base import Sink
from regimescope.sinks.jsonl import JsonlSink
from regimescope.sinks.tensorboard import TensorBoardSink

JSONL_NAME = "regimescope.jsonl"
"""The file a monitor with a ``logdir`` writes in it."""


def logdir_sinks(logdir: str | os.PathLike[str] | None) -> list[Sink]:
    """``[JsonlSink(logdir / "regimescope.jsonl"), TensorBoardSink(logdir)]``, or ``[]`` for ``logdir=None``.

    The JSONL sink comes first: opening it checks that the folder can be written and claims it for this monitor,
    so a second monitor on the same ``logdir`` is refused before any file is touched.

    Raises:
        OSError: When ``logdir`` cannot be created or written, with the fix.
        RuntimeError: When another monitor (in any process) writes to ``logdir``, with the fix.
        ImportError: When ``tensorboard`` is missing, with the install line.
    """
    if logdir is None:
        return []
    jsonl = JsonlSink(Path(logdir) / JSONL_NAME)
    try:
        return [jsonl, TensorBoardSink(logdir)]
    except BaseException:
        jsonl.close()
        raise
