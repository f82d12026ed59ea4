"""A long monitored run, measured at every step: the history keeps ``history_size`` records, the saved state does
not grow with the number of measurements, and neither does the Python heap nor the number of live tensors."""

from __future__ import annotations

import gc
import io

import torch

from tests.robustness._logs import fresh, monitor, steps, train
from tests.robustness._memory import growth

HISTORY = 8
UNTRACED, WARM, MORE = 260, 3 * HISTORY, 100
"""Measurements before tracing (past step 255, so every step number pickles in the same width), while tracing before
the first reading (the history and the noise and kernel-jump windows turn over), and between the readings."""


def _saved_bytes(state: dict) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def test_a_long_run_keeps_its_history_bounded_and_its_state_and_memory_flat() -> None:
    """A record kept per measurement would hold about 3 KB of the heap (its scalars, explanation and diagnosis
    texts), 300 KB between the readings, and 6.5 KB of the saved state. What the heap holds more at the second reading
    is torch's own small objects, which come and go (10-25 KB here, flat over 800 measurements): the margin is 64 KB.
    The state may change by an alert rule's bookkeeping (a key per tag, bounded): its margin is 1 KB."""
    model, optimizer = fresh()
    mon = monitor(model, optimizer, every=1, history_size=HISTORY).attach()
    readings: list[tuple[int, int]] = []

    def read() -> None:
        gc.collect()
        live_tensors = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
        readings.append((_saved_bytes(mon.state_dict()), live_tensors))

    kept = growth(lambda step: train(model, optimizer, 1), warm=WARM, more=MORE, settle=read, untraced=UNTRACED)
    mon.close()
    total = UNTRACED + WARM + MORE
    assert steps(mon.history) == list(range(total - HISTORY + 1, total + 1))
    (state_before, tensors_before), (state_after, tensors_after) = readings
    assert abs(state_after - state_before) <= 1024, readings
    assert tensors_after <= tensors_before + 2, readings  # one kept per measurement would be 100 more
    assert kept < 64 * 1024, f"{kept} bytes kept over {MORE} measurements"
