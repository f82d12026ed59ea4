"""Two training runs in one process, taking turns step by step, each timed on its own turns only.

Run one after the other, two identical 300-step runs on a shared 2-core machine differed by up to a third in wall
time (``docs/performance.md``): the machine's speed drifts over seconds, and a plain run and a monitored one made
minutes apart cannot resolve a 5 % overhead. In lockstep, each run trains in its own thread and the two hand a
baton back and forth at every step, so both see the same machine within a fraction of a second and only one runs
at a time. Each run's time is the sum of its own turns.

Two things of the process must then be the same for both runs, so :func:`one_core_one_arena` is called first:

- the CPU: the threads would otherwise run on different cores, whose speeds differ on a shared machine (measured
  here: two plain runs differed by up to 5 % in their median step when free to move, by 0.1 % on one core);
- the memory allocator: glibc gives each thread its own arena, and whether a thread's arena hands memory back to
  the system after a large allocation and faults it in again on the next step is chaotic. A run whose arena did so
  took 680 000 page faults over 300 steps of the small CNN (its plain twin 16 000) and trained 10 to 20 % slower,
  either run, by chance. With one arena for the process, as in a single-threaded training script, both took a few
  thousand and the spread vanished.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of malloc arenas."""


def one_core_one_arena(cores: int) -> str:
    """Keep this process on its first ``cores`` CPUs and on one malloc arena (glibc); say what was done."""
    done = []
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))[:cores]
        os.sched_setaffinity(0, allowed)
        done.append(f"pinned to CPU {', '.join(map(str, allowed))}")
    try:
        if ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1) == 1:
            done.append("one malloc arena")
    except OSError:
        pass
    return "; ".join(done) or "neither pinned nor on one arena (not Linux/glibc)"


class Turns:
    """A baton two parties (0 and 1) pass at every step; each party's time is the sum of its turns.

    Party 0 starts. A party calls :meth:`begin` once before its first step (its set-up, such as ``attach()``, is
    then timed), :meth:`step` between steps, and :meth:`end` when it is done (and when it fails, so that the other
    party never waits for it). Once a party has ended, the other runs on alone.

    Attributes:
        seconds: Each party's total time in its turns.
        turns: Each party's turn durations, in order.
    """

    def __init__(self) -> None:
        self._baton = threading.Condition()
        self._holder = 0
        self._ended = [False, False]
        self._since = [0.0, 0.0]
        self.seconds = [0.0, 0.0]
        self.turns: list[list[float]] = [[], []]

    def _wait(self, party: int) -> None:
        self._baton.wait_for(lambda: self._holder == party or self._ended[1 - party])
        self._since[party] = time.perf_counter()

    def _close_turn(self, party: int) -> None:
        elapsed = time.perf_counter() - self._since[party]
        self.seconds[party] += elapsed
        self.turns[party].append(elapsed)
        self._holder = 1 - party
        self._baton.notify_all()

    def begin(self, party: int) -> None:
        """Wait for ``party``'s first turn."""
        with self._baton:
            self._wait(party)

    def step(self, party: int) -> None:
        """End ``party``'s turn, hand over the baton and wait for its next turn."""
        with self._baton:
            self._close_turn(party)
            self._wait(party)

    def end(self, party: int) -> None:
        """End ``party``'s last turn and leave the other to run alone (nothing when it has ended already)."""
        with self._baton:
            if not self._ended[party]:
                self._close_turn(party)
                self._ended[party] = True

    def clock(self, party: int) -> Callable[[], float]:
        """A clock that advances only in ``party``'s turns: its time so far, read in one of its turns."""
        return lambda: self.seconds[party] + time.perf_counter() - self._since[party]


def in_lockstep(turns: Turns, first: Callable[[Turns, int], T], second: Callable[[Turns, int], T]) -> list[T]:
    """Run ``first(turns, 0)`` and ``second(turns, 1)`` in two threads, in ``turns``; return both results.

    Raises:
        Whatever either run raised (the first failure), once both threads are done.
    """
    results: list = [None, None]
    errors: list[BaseException] = []

    def run(party: int, body: Callable[[Turns, int], object]) -> None:
        try:
            results[party] = body(turns, party)
        except BaseException as error:  # noqa: BLE001 (re-raised in the caller's thread)
            errors.append(error)
        finally:
            turns.end(party)

    threads = [threading.Thread(target=run, args=(p, body)) for p, body in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
