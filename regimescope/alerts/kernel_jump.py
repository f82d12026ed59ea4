"""The kernel-jump rule: the NTK's velocity spikes above its recent level."""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding, check_count, check_positive
from regimescope.tags import KERNEL_DISTANCE, KERNEL_VELOCITY, by_layer


class KernelJump(AlertRule):
    """Alerts when the kernel velocity jumps well above its running median.

    The velocity ``v_t = arccos(1 - S(K_prev, K_t)) / dt`` (``regimescope/kernel/velocity``) is compared with the
    median ``m`` of its previous ``window`` values. The rule holds when ``v_t > factor * m``, when the kernel
    turned by a material angle since the previous measurement (``v_t * dt > min_angle``), and, so that
    measurement noise alone never triggers it, when ``v_t - m > sigmas * noise`` (``noise`` from
    :mod:`regimescope.indicators.noise`). The alert names the layer whose own kernel moved most
    since the previous measurement (``regimescope/kernel/distance_from_init/<layer>``).

    Args:
        factor: How many times the running median the velocity must reach.
        window: Previous velocities the median runs over.
        min_history: Previous velocities needed before the rule can hold.
        min_angle: Radians the kernel must turn between the two measurements (0.01 rad is ``S ~ 5e-5``).
        sigmas: Noise standard errors the jump must exceed.
        patience: Consecutive measurements the jump must hold.
        cooldown: Measurements after an alert during which no other jump is announced.

    Raises:
        ValueError: For a non-positive ``factor``/``sigmas`` or counts out of range.
    """

    kind = "kernel_jump"
    meaning = (
        "the kernel is turning much faster than before, a phase of rapid feature learning (a plateau ending, "
        "a new direction of the task being picked up); with a rising loss it signals an unstable step size."
    )

    def __init__(
        self,
        *,
        factor: float = 4.0,
        window: int = 5,
        min_history: int = 3,
        min_angle: float = 0.01,
        sigmas: float = 3.0,
        patience: int = 1,
        cooldown: int = 5,
    ) -> None:
        super().__init__(patience=patience, cooldown=cooldown)
        self.factor = check_positive("factor", factor)
        self.sigmas = check_positive("sigmas", sigmas)
        self.min_angle = check_positive("min_angle", min_angle)
        self.window = check_count("window", window, 1)
        self.min_history = check_count("min_history", min_history, 1)
        if self.min_history > self.window:
            raise ValueError(
                f"`min_history` ({min_history}) cannot exceed `window` ({window}); lower it or widen the window."
            )
        self._velocities: deque[float] = deque(maxlen=window)
        self._layer_distances: dict[str, float] = {}
        self._last_step: int | None = None

    def findings(self, observation: Observation) -> list[Finding]:
        """A finding when the velocity jumped; the velocity joins the history either way."""
        layer = self._fastest_layer(observation)
        interval = observation.step - self._last_step if self._last_step is not None else 0
        self._last_step = observation.step
        velocity = observation.scalars.get(KERNEL_VELOCITY)
        if velocity is None or velocity != velocity:
            return []
        history = list(self._velocities)
        self._velocities.append(velocity)
        if len(history) < self.min_history:
            return []
        median = statistics.median(history)
        noise = observation.noise_of(KERNEL_VELOCITY)
        if (
            velocity <= self.factor * median
            or velocity * interval <= self.min_angle
            or velocity - median <= self.sigmas * noise
        ):
            return []
        ratio = f"{velocity / median:.1f}x" if median > 0 else "far above"
        message = (
            f"kernel velocity {velocity:.3g} rad/step is {ratio} its running median {median:.3g} (noise {noise:.2g})"
        )
        return [Finding(key="kernel", message=message, tag=KERNEL_VELOCITY, layer=layer, value=velocity, reference=median)]

    def _own_state(self) -> dict[str, Any]:
        """The velocity history, the last per-layer distances and the last step."""
        return {"velocities": list(self._velocities), "layer_distances": dict(self._layer_distances),
                "last_step": self._last_step}

    def _load_own_state(self, state: dict[str, Any]) -> None:
        self._velocities = deque(state["velocities"], maxlen=self.window)
        self._layer_distances = dict(state["layer_distances"])
        self._last_step = state["last_step"]

    def _fastest_layer(self, observation: Observation) -> str | None:
        """The layer whose kernel distance from init grew most since the previous measurement."""
        current = by_layer(observation.scalars, KERNEL_DISTANCE)
        growth = {layer: value - self._layer_distances.get(layer, 0.0) for layer, value in current.items()}
        self._layer_distances = current
        finite = {layer: g for layer, g in growth.items() if g == g}
        return max(finite, key=finite.__getitem__) if finite else None
