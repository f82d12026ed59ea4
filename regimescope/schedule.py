"""When to measure: schedules are plain ``step -> bool`` callables."""

from __future__ import annotations

from collections.abc import Callable

Schedule = Callable[[int], bool]


class LogThenEvery:
    """Measure at step 0, at log-spaced early steps, then every ``every`` steps.

    The regime is decided early in training (the kernel moves fastest at the start), so the early steps
    ``1, 2, 4, 8, ...`` below ``every`` are measured too.

    Args:
        every: Interval of the regular measurements, in optimizer steps.
        early: Also measure the powers of two below ``every``.

    Raises:
        ValueError: When ``every`` is not a positive integer.
    """

    def __init__(self, every: int, early: bool = True) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"`every` must be a positive integer number of steps; received {every!r}.")
        self.every = every
        self.early = early

    def __call__(self, step: int) -> bool:
        if step % self.every == 0:
            return True
        return self.early and step < self.every and step & (step - 1) == 0

    def __repr__(self) -> str:
        return f"LogThenEvery(every={self.every}, early={self.early})"
