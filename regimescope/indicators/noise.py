"""Measurement noise of the kernel indicators, from the spread between the two halves of the probe.

Each kernel indicator ``x`` (kernel distance from init, relative change, velocity, per-layer distance) is also
computed on the kernels of the probe's even and odd examples, ``x_a`` and ``x_b``. Had the probe been drawn again,
the whole-probe value would move by about ``|x_a - x_b| / 2`` (the standard error of the mean of two halves). One
pair of halves gives a rough estimate, so the value reported is the root mean square of the last ``window``
estimates (:class:`NoiseWindow`). The halves need no extra model pass: they are sub-blocks of the kernels the capture
already computed. A rule treats a change as real only when it exceeds a few of these.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from regimescope.indicators.base import Indicator
from regimescope.record import Record
from regimescope.tags import noise_tag

MIN_EXAMPLES = 4
"""Probes smaller than this have no noise estimate (each half needs two examples)."""


def _block(kernel: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return kernel.index_select(0, index).index_select(1, index)


def halves_spread(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], reference: torch.Tensor, kernel: torch.Tensor
) -> float | None:
    """``|fn(A_a, B_a) - fn(A_b, B_b)| / 2`` over the even (``a``) and odd (``b``) probe examples.

    Args:
        fn: The indicator as a function of (reference kernel, current kernel).
        reference: The reference kernel ``(n, n)``.
        kernel: The current kernel ``(n, n)``.

    Returns:
        The spread, or ``None`` when the probe has fewer than :data:`MIN_EXAMPLES` examples or the spread is not
        finite.
    """
    n = kernel.shape[0]
    if n < MIN_EXAMPLES:
        return None
    a, b = (float(fn(_block(reference, h), _block(kernel, h))) for h in (torch.arange(0, n, 2), torch.arange(1, n, 2)))
    spread = abs(a - b) / 2
    return spread if math.isfinite(spread) else None


class NoiseWindow:
    """Root mean square of the last ``window`` noise estimates of each quantity.

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

    def smoothed(self, name: str, value: float) -> float:
        """Add ``value`` to ``name``'s window and return the window's root mean square."""
        recent = self._recent.setdefault(name, deque(maxlen=self.window))
        recent.append(value)
        return math.sqrt(sum(v * v for v in recent) / len(recent))

    def state_dict(self) -> dict[str, list[float]]:
        """The recent estimates per quantity (plain lists), so a resumed run smooths over the same window."""
        return {name: list(values) for name, values in self._recent.items()}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        """Restore :meth:`state_dict` output."""
        self._recent = {name: deque(values, maxlen=self.window) for name, values in state.items()}


class NoisyIndicator(Indicator):
    """An indicator that writes, next to each kernel quantity, its noise from the probe halves.

    Subclasses call :meth:`add_noise` for each quantity; the noise goes under
    :func:`regimescope.tags.noise_tag` of the quantity's tag, smoothed over ``window`` measurements.

    Args:
        window: Measurements the noise's root mean square runs over.
    """

    def __init__(self, window: int = 5) -> None:
        self._noise = NoiseWindow(window)

    def add_noise(
        self,
        record: Record,
        quantity: str,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        reference: torch.Tensor,
        kernel: torch.Tensor,
        per: float = 1.0,
    ) -> None:
        """Write the noise of ``quantity = fn(reference, kernel) / per`` into ``record`` (when it has one)."""
        spread = halves_spread(fn, reference, kernel)
        if spread is not None:
            record.scalars[noise_tag(quantity)] = self._noise.smoothed(quantity, spread / per)

    def state_dict(self) -> dict[str, Any]:
        """The noise window."""
        return {"noise": self._noise.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self._noise.load_state_dict(state.get("noise", {}))
