"""The overhead budget: the monitor's time stays under ``max_overhead`` times the training's.

The monitor adds its own time (``attach()`` itself, measurements and the writing of their records, per-step
observations, ``m``) and reads the wall time since ``attach()`` began (``w``); the training's time is the rest,
``w - m``. A measurement predicted to cost ``c`` seconds may start when

    m + c <= (1 - UNSEEN_SHARE) * max_overhead * (w - m),

that is, when the monitored run would still be at most ``max_overhead`` slower than the same run without the monitor
(``w / (w - m) - 1``, the ratio ``benchmarks/overhead.py`` measures against plain training) after it, with
:data:`UNSEEN_SHARE` of the budget kept for what the monitor's clock cannot see. A scheduled
measurement that would break the budget is deferred, not dropped: the schedule says how many measurements are owed
by each step, the budget says when they are paid. Deferred measurements are :attr:`OverheadBudget.pending` and are
taken one per step, each at the first later step where the budget allows it. So the regular interval stretches by
itself when measurements are expensive next to training steps (the monitor then measures at the rate the budget
allows, about every :meth:`OverheadBudget.steady_interval` steps, until it has made as many measurements as the
schedule asked for), and the early log-spaced measurements wait until training has earned them. The step-0
measurement, the reference of every comparison, is never deferred.

Per-step observations (an indicator reading each optimizer step, such as the explained drift of layer balance) may
use :data:`OBSERVATION_SHARE` of the budget; when observing every step would cost more (a large model's gradients
read on a CPU), the monitor observes every ``s``-th step only and each observation stands for itself and the
``s - 1`` steps after it (:meth:`OverheadBudget.observation_stride`).

The budget reads :func:`now`.
"""

from __future__ import annotations

import math
import time
from typing import Any

OBSERVATION_SHARE = 0.1
"""The share of the overhead budget per-step observations may use before they are sampled (the rest is for
measurements, which the regime is read from)."""
UNSEEN_SHARE = 0.1
"""The share of the overhead budget kept for costs the monitor's clock cannot see: garbage collections its objects
bring on during training steps, caches a measurement leaves cold, the optimizer hook's own call. In lockstep with
plain training (``benchmarks/overhead.py``) the monitored runs took between 0.2 points less and 0.5 points more
overhead than the monitor's clock counted."""
DEFAULT_MAX_OVERHEAD = 0.05
"""The default overhead: the monitor's time at most 5 % of the training's (see ``docs/performance.md`` for how it
was chosen)."""


def now() -> float:
    """The clock the monitor reads, in seconds: ``time.perf_counter()``.

    Called through the module (``regimescope.budget.now()``), so that a benchmark training a plain and a monitored
    run in turns, in one process (``benchmarks/overhead.py``), can replace it with the monitored run's own time.
    """
    return time.perf_counter()


def check_overhead(value: float | None) -> float | None:
    """``value`` when it is ``None`` or a number in ``(0, 1)``; a ``ValueError`` naming the argument otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(
            f"`max_overhead` must be the monitor's time as a fraction of the training's, in (0, 1), e.g. 0.05 for 5%, "
            f"or None for a fixed schedule; received {value!r}."
        )
    return float(value)


class OverheadBudget:
    """Keeps the monitor's time under ``max_overhead`` times the training's.

    Args:
        max_overhead: The largest overhead ``m / (w - m)`` the monitor may add; ``None`` allows every measurement.

    Attributes:
        spent: Seconds of the monitor's own time so far.
        deferred: Scheduled measurements deferred so far.
        pending: Scheduled measurements owed and not yet taken (each is taken when the budget allows).

    Raises:
        ValueError: For an overhead outside ``(0, 1)``.
    """

    def __init__(self, max_overhead: float | None) -> None:
        self.max_overhead = check_overhead(max_overhead)
        self.spent = 0.0
        self.deferred = 0
        self.pending = 0
        self._start: float | None = None
        self._costs: list[float] = []

    def start(self, now: float) -> None:
        """Start the wall-time clock (when ``attach()`` begins)."""
        self._start = now

    def spend(self, seconds: float, *, measurement: bool = False, one_time: float = 0.0) -> None:
        """Count ``seconds`` of the monitor's time; a ``measurement`` also updates the predicted cost.

        Args:
            seconds: The monitor's time to count, all of it.
            measurement: Whether it was a measurement, whose cost predicts the next one's.
            one_time: The part of a measurement's ``seconds`` later ones will not repeat (the step-0 forecast, a
                first capture discarded by the sizing): counted, but left out of the predicted cost.
        """
        self.spent += seconds
        if measurement:
            self._costs = [*self._costs[-2:], max(0.0, seconds - one_time)]

    @property
    def predicted_cost(self) -> float:
        """The cost of the next measurement: the median of the last three (``0`` before the first)."""
        if not self._costs:
            return 0.0
        return sorted(self._costs)[len(self._costs) // 2]

    def training_seconds(self, now: float) -> float:
        """The training's wall time since the clock started: ``w - m`` (``0`` before :meth:`start`)."""
        return 0.0 if self._start is None else max(0.0, now - self._start - self.spent)

    def overhead(self, now: float) -> float:
        """The monitor's time over the training's so far, ``m / (w - m)`` (``0`` before any training time)."""
        training = self.training_seconds(now)
        return self.spent / training if training > 0 else 0.0

    def allows(self, now: float) -> bool:
        """Whether a measurement of :attr:`predicted_cost` may start at ``now`` within the budget."""
        if self.max_overhead is None or self._start is None:
            return True
        return self.spent + self.predicted_cost <= self._measuring_share * self.training_seconds(now)

    @property
    def _measuring_share(self) -> float:
        """The overhead the monitor's own, timed work may add: ``(1 - UNSEEN_SHARE) max_overhead``."""
        return (1 - UNSEEN_SHARE) * (self.max_overhead or 0.0)

    def observation_stride(self, observation_seconds: float, seconds_per_step: float) -> int:
        """Optimizer steps each per-step observation should stand for: 1 while observing every step costs at most
        :data:`OBSERVATION_SHARE` of the budget, else ``ceil(o / (OBSERVATION_SHARE f t))`` for an observation of
        ``o`` seconds, an overhead ``f`` and ``t`` seconds per training step (always 1 without a budget)."""
        if self.max_overhead is None or seconds_per_step <= 0:
            return 1
        return max(1, math.ceil(observation_seconds / (OBSERVATION_SHARE * self.max_overhead * seconds_per_step)))

    def steady_interval(self, seconds_per_step: float) -> int | None:
        """Training steps between measurements once the budget binds: ``c / ((1 - u) f t)`` for a measurement of
        ``c`` seconds, ``t`` seconds per training step, overhead ``f`` and :data:`UNSEEN_SHARE` ``u`` (``None``
        without a budget or a step time)."""
        if self.max_overhead is None or seconds_per_step <= 0:
            return None
        return max(1, math.ceil(self.predicted_cost / (self._measuring_share * seconds_per_step)))

    def state_dict(self) -> dict[str, Any]:
        """Recent measurement costs, the count of deferred measurements and of those still pending (the clock
        restarts on resume)."""
        return {"costs": list(self._costs), "deferred": self.deferred, "pending": self.pending}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self._costs = [float(c) for c in state.get("costs", [])]
        self.deferred = int(state.get("deferred", 0))
        self.pending = int(state.get("pending", 0))
