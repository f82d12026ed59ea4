"""Peak resident memory of a call: ``/proc/self/statm`` sampled by a background thread, as a delta over the start."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


def _release() -> None:
    """Collect garbage and hand freed heap pages back to the system, so the baseline is the live memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def measure(fn: Callable[[], Any], interval: float = 0.001) -> tuple[Any, float, int]:
    """Run ``fn`` once; return its result, wall seconds and peak resident bytes above the starting RSS."""
    _release()
    baseline = resident_bytes()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        elapsed = time.perf_counter() - start
        peak = max(peak, resident_bytes())
        done.set()
        sampler.join()
    return result, elapsed, peak - baseline
