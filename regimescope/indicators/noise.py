"""Measurement noise of the kernel indicators: the probe's sampling error (jackknife over its examples) and, when the
kernel is estimated from a random output projection, the projection's own error (its two halves).

Every kernel indicator is a function of three Frobenius products of the reference kernel ``A`` and the current
kernel ``B``: ``|A|^2``, ``|B|^2`` and ``<A, B>`` (the kernel distance ``S = 1 - <A,B> / (|A| |B|)``, the angle
``arccos(1 - S)``, the relative change ``|B - A| / |A| = sqrt(|A|^2 + |B|^2 - 2 <A,B>) / |A|``).

- Probe sampling: had other examples been drawn, the value would differ. The delete-one jackknife estimates that
  standard error: with ``x_(i)`` the value on the probe without example ``i`` and ``x_(.)`` their mean,
  ``SE^2 = (n - 1) / n sum_i (x_(i) - x_(.))^2``. Leaving example ``i`` out removes row and column ``i`` of both
  kernels, so each product loses ``2 sum_j A_ij B_ij - A_ii B_ii``: all ``n`` values cost ``O(n^2)``, no model pass.
  (Kernel indicators are dominated by a few examples when some ReLU patterns flip; the jackknife sees each example's
  influence, where a split into two halves would miss an example that falls in neither's difference.)
- Output projection: the capture keeps the kernel estimated from each half of the random output combinations; the
  indicator on each half, ``x_a`` and ``x_b``, differs from the whole by about ``|x_a - x_b| / 2``.

The two errors are independent and add in quadrature. One estimate is rough, so the value reported is the root mean
square of the last ``window`` estimates (:class:`NoiseWindow`). A rule treats a change as real only when it exceeds a
few of these.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from regimescope.indicators.base import Indicator
from regimescope.record import Record
from regimescope.tags import noise_tag

MIN_EXAMPLES = 4
"""Probes smaller than this have no sampling-noise estimate."""


@dataclass(frozen=True)
class Products:
    """Frobenius products of a reference kernel ``A`` and a current kernel ``B`` (float64 scalars, or ``(n,)`` with
    example ``i`` left out).

    Attributes:
        aa: ``|A|_F^2``.
        bb: ``|B|_F^2``.
        ab: ``<A, B>_F``.
    """

    aa: torch.Tensor
    bb: torch.Tensor
    ab: torch.Tensor


def products(reference: torch.Tensor, kernel: torch.Tensor) -> Products:
    """The products of the whole kernels (last two dimensions; leading ones, e.g. the two halves, kept)."""
    a, b = reference.double(), kernel.double()
    return Products((a * a).sum((-2, -1)), (b * b).sum((-2, -1)), (a * b).sum((-2, -1)))


def leave_one_out(reference: torch.Tensor, kernel: torch.Tensor) -> Products:
    """The products with example ``i`` (row and column ``i`` of both kernels) left out, for every ``i``: ``(n,)``."""
    a, b = reference.double(), kernel.double()

    def drop(product: torch.Tensor) -> torch.Tensor:
        return product.sum() - 2 * product.sum(1) + product.diagonal()

    return Products(drop(a * a), drop(b * b), drop(a * b))


def _cosine(p: Products) -> torch.Tensor:
    return p.ab / torch.sqrt(p.aa * p.bb)


def distance(p: Products) -> torch.Tensor:
    """``S(A, B) = 1 - <A, B> / (|A| |B|)``."""
    return 1 - _cosine(p)


def angle(p: Products) -> torch.Tensor:
    """``arccos(<A, B> / (|A| |B|))``, the angle the kernel turned."""
    return torch.arccos(_cosine(p).clamp(-1.0, 1.0))


def change(p: Products) -> torch.Tensor:
    """``|B - A| / |A|`` (``A`` the reference)."""
    return torch.sqrt((p.aa + p.bb - 2 * p.ab).clamp(min=0)) / torch.sqrt(p.aa)


Statistic = Callable[[Products], torch.Tensor]


def jackknife_error(statistic: Statistic, reference: torch.Tensor, kernel: torch.Tensor) -> float | None:
    """The delete-one jackknife standard error of ``statistic`` over the probe's examples.

    Returns:
        ``sqrt((n - 1) / n sum_i (x_(i) - x_(.))^2)``, or ``None`` for a probe of fewer than :data:`MIN_EXAMPLES`
        examples or a non-finite result.
    """
    n = kernel.shape[0]
    if n < MIN_EXAMPLES:
        return None
    values = statistic(leave_one_out(reference, kernel))
    error = float(torch.sqrt((n - 1) / n * (values - values.mean()).square().sum()))
    return error if math.isfinite(error) else None


def halves_spread(statistic: Statistic, reference_halves: torch.Tensor, halves: torch.Tensor) -> float | None:
    """``|x_a - x_b| / 2`` of ``statistic`` on the two ``(2, n, n)`` half estimates of an output projection."""
    values = statistic(products(reference_halves, halves))
    spread = float((values[0] - values[1]).abs()) / 2
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
        statistic: Statistic,
        reference: torch.Tensor,
        kernel: torch.Tensor,
        per: float = 1.0,
        halves: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
    ) -> None:
        """Write the noise of ``quantity = statistic(reference, kernel) / per`` into ``record`` (when it has one).

        Args:
            record: The record to write into.
            quantity: The quantity's tag.
            statistic: The quantity as a function of the kernels' :class:`Products`.
            reference: The reference kernel.
            kernel: The current kernel.
            per: Divisor of the quantity (the steps between two measurements, for a velocity).
            halves: The ``(2, n, n)`` estimates of the reference and current kernels from each half of a random
                output projection (:attr:`~regimescope.capture.snapshot.Snapshot.layer_kernel_halves`); when both
                are given the projection's spread joins the probe's jackknife error in quadrature.
        """
        parts = [jackknife_error(statistic, reference, kernel)]
        if halves[0] is not None and halves[1] is not None:
            parts.append(halves_spread(statistic, halves[0], halves[1]))
        found = [part for part in parts if part is not None]
        if found:
            spread = math.sqrt(sum(part * part for part in found))
            record.scalars[noise_tag(quantity)] = self._noise.smoothed(quantity, spread / per)

    def state_dict(self) -> dict[str, Any]:
        """The noise window."""
        return {"noise": self._noise.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self._noise.load_state_dict(state.get("noise", {}))
