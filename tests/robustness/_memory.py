"""Measuring what a long run keeps: Python heap growth over many calls, after a warm-up."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def growth(
    call: Callable[[int], None],
    warm: int,
    more: int,
    settle: Callable[[], None] = lambda: None,
    untraced: int = 0,
) -> int:
    """Bytes still allocated on the Python heap after ``more`` calls ``call(step)``, beyond what was after the
    ``warm`` calls before them.

    Tracing starts after the first ``untraced`` calls (tracing slows every allocation several times) and before the
    ``warm`` ones, so what a bounded buffer drops during the ``more`` calls counts against what it takes in, as long
    as the ``warm`` calls turned the buffer over once. ``settle()`` runs before each reading (what a background writer
    still holds is drained first).
    """
    for step in range(untraced):
        call(step)
    tracemalloc.start()
    try:
        for step in range(untraced, untraced + warm):
            call(step)
        settle()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for step in range(untraced + warm, untraced + warm + more):
            call(step)
        settle()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
