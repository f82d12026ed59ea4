"""The lockstep of ``benchmarks/overhead.py``: two runs take strict turns, and each is timed on its own turns only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from lockstep import Turns, in_lockstep  # noqa: E402

PAUSE = 0.02


def _run(
    steps: int, pause: float, log: list[tuple[int, int]], clocks: list[float] | None = None
) -> Callable[[Turns, int], int]:
    def body(turns: Turns, party: int) -> int:
        turns.begin(party)
        for step in range(steps):
            if step:
                turns.step(party)
            log.append((party, step))
            time.sleep(pause)
            if clocks is not None:
                clocks.append(turns.clock(party)())
        turns.end(party)
        return party

    return body


def test_the_runs_alternate_step_by_step_and_the_longer_one_finishes_alone() -> None:
    log: list[tuple[int, int]] = []
    turns = Turns()
    results = in_lockstep(turns, _run(3, 0.0, log), _run(5, 0.0, log))
    assert results == [0, 1]
    assert log == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (1, 3), (1, 4)]
    assert [len(t) for t in turns.turns] == [3, 5]


def test_a_run_is_timed_on_its_own_turns_and_its_clock_skips_the_other_run() -> None:
    clocks: list[float] = []
    turns = Turns()
    start = time.perf_counter()
    in_lockstep(turns, _run(4, PAUSE, []), _run(4, 0.0, [], clocks))
    elapsed = time.perf_counter() - start
    assert turns.seconds[0] >= 4 * PAUSE  # a sleep lasts at least its pause
    assert turns.seconds[1] < elapsed - 4 * PAUSE  # the other run's sleeps are not in this run's time
    assert clocks == sorted(clocks) and clocks[-1] <= turns.seconds[1]  # its clock: its own time, rising


def test_a_failing_run_ends_its_turns_so_the_other_finishes_and_the_error_reaches_the_caller() -> None:
    log: list[tuple[int, int]] = []

    def failing(turns: Turns, party: int) -> None:
        turns.begin(party)
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        in_lockstep(Turns(), failing, _run(3, 0.0, log))
    assert log == [(1, 0), (1, 1), (1, 2)]
