"""What theory predicts for a scenario: the regime (:class:`Theory`) and the kernel evidence that carries it."""

from __future__ import annotations

import enum


class Theory(enum.Enum):
    """The regime theory predicts for a run (``str()`` gives the value, e.g. ``"lazy early"``)."""

    LAZY = "lazy"
    """The NTK on the probe barely moves for the whole run: ``S(K_0, K_T) << 1`` and ``|K_T - K_0| / |K_0| << 1``."""
    RICH = "rich"
    """The NTK moves: it turns, or it grows by orders of magnitude from a small initialisation."""
    DELAYED_RICH = "delayed rich"
    """Lazy first (the large layer fits on fixed features), rich once the small layer has grown."""
    LAZY_EARLY = "lazy early"
    """Lazy over the first part of the run; theory says nothing definite about its end."""

    def __str__(self) -> str:
        """The plain value, for tables."""
        return self.value

    def agrees(self, early: str, final: str) -> bool:
        """Whether the labels at the early checkpoint and at the end agree with this prediction.

        Args:
            early: The verdict's label early in the run (see :data:`~regimescope.scenarios.runner.EARLY_FRACTION`).
            final: The verdict's label at the end of the run.
        """
        if self is Theory.LAZY:
            return early == "lazy" and final == "lazy"
        if self is Theory.RICH:
            return final == "rich"
        if self is Theory.DELAYED_RICH:
            return early == "lazy" and final == "rich"
        return early == "lazy"


class Signature(enum.Enum):
    """Which kernel evidence theory says carries a rich run (used to calibrate each evidence's ramp)."""

    DIRECTION = "direction"
    """The kernel turns: ``S(K_0, K_t)`` grows towards 1."""
    SCALE = "scale"
    """The kernel grows by orders of magnitude from a small initialisation: ``|K_t - K_0| / |K_0| >> 1``."""
