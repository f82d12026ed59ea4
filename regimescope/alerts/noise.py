"""Measurement noise of the kernel indicators, from the spread between the two halves of the probe."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import torch

from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_angle, kernel_distance, relative_change
from regimescope.record import TAG_ROOT, tag

NOISE_FAMILY = "noise"
"""Noise estimates are logged as ``regimescope/noise/<family>/<metric>[/<layer>]``."""

DISTANCE_TAG = tag("kernel", "distance_from_init")
CHANGE_TAG = tag("kernel", "relative_change")
VELOCITY_TAG = tag("kernel", "velocity")


def noise_tag(indicator_tag: str) -> str:
    """The tag the noise of ``indicator_tag`` is logged under: ``regimescope/noise/<rest of the tag>``."""
    prefix = f"{TAG_ROOT}/"
    rest = indicator_tag[len(prefix) :] if indicator_tag.startswith(prefix) else indicator_tag
    return f"{TAG_ROOT}/{NOISE_FAMILY}/{rest}"


def _block(kernel: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return kernel.index_select(0, index).index_select(1, index)


class ProbeHalfNoise:
    """Standard errors of the kernel indicators, estimated by measuring them on each half of the probe.

    The probe is split into its even and odd examples; each indicator ``x`` (kernel distance from init,
    relative change, velocity, per-layer distance) is computed on both halves' kernels, ``x_a`` and ``x_b``. Had
    the probe been drawn again, the whole-probe value would move by about ``|x_a - x_b| / 2`` (the standard error
    of the mean of two halves). One pair of halves gives a rough estimate, so the value reported is the root mean
    square of the last ``window`` estimates. A rule treats a change as real only when it exceeds a few of these.

    The halves need no extra model pass: they are sub-blocks of the kernels the capture already computed.

    Args:
        window: Measurements the root mean square runs over.

    Raises:
        ValueError: When ``window < 1``.
    """

    def __init__(self, window: int = 5) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"`window` must be a positive number of measurements; received {window!r}.")
        self.window = window
        self._recent: dict[str, deque[float]] = {}

    def estimate(self, current: Snapshot, init: Snapshot | None, previous: Snapshot | None) -> dict[str, float]:
        """``indicator tag -> noise`` for the kernel indicators this measurement has references for.

        Args:
            current: The snapshot just captured.
            init: The step-0 snapshot (its kernels are the reference of the distances from init).
            previous: The previous measurement's snapshot (the reference of the velocity).

        Returns:
            Noise estimates; empty when the snapshots hold no kernels or the probe has fewer than 4 examples.
        """
        kernel = current.kernel
        if kernel is None or kernel.shape[0] < 4:
            return {}
        halves = (torch.arange(0, kernel.shape[0], 2), torch.arange(1, kernel.shape[0], 2))
        spreads: dict[str, float] = {}
        if init is not None and init.layer_kernels:
            k0 = init.kernel
            spreads[DISTANCE_TAG] = self._spread(kernel_distance, k0, kernel, halves)
            spreads[CHANGE_TAG] = self._spread(lambda a, b: relative_change(b, a), k0, kernel, halves)
            for layer, k_t in current.layer_kernels.items():
                if layer in init.layer_kernels:
                    spread = self._spread(kernel_distance, init.layer_kernels[layer], k_t, halves)
                    spreads[tag("kernel", "distance_from_init", layer)] = spread
        if previous is not None and previous.layer_kernels and current.step > previous.step:
            angle = self._spread(kernel_angle, previous.kernel, kernel, halves)
            spreads[VELOCITY_TAG] = angle / (current.step - previous.step)
        return {name: self._smoothed(name, value) for name, value in spreads.items() if math.isfinite(value)}

    @staticmethod
    def _spread(
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        reference: torch.Tensor,
        kernel: torch.Tensor,
        halves: tuple[torch.Tensor, torch.Tensor],
    ) -> float:
        a, b = (float(fn(_block(reference, h), _block(kernel, h))) for h in halves)
        return abs(a - b) / 2

    def state_dict(self) -> dict[str, list[float]]:
        """The recent estimates per tag (plain lists), so a resumed run smooths over the same window."""
        return {name: list(values) for name, values in self._recent.items()}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        """Restore :meth:`state_dict` output."""
        self._recent = {name: deque(values, maxlen=self.window) for name, values in state.items()}

    def _smoothed(self, name: str, value: float) -> float:
        recent = self._recent.setdefault(name, deque(maxlen=self.window))
        recent.append(value)
        return math.sqrt(sum(v * v for v in recent) / len(recent))
