"""The contract every indicator keeps: what it needs, what it compares against, which way is rich."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.record import Record

if TYPE_CHECKING:
    import torch

    from regimescope.probe import Probe


class Reference(enum.Enum):
    """Which earlier snapshot an indicator compares the current one with."""

    INIT = "init"
    """The first measurement of the run (step 0): "distance from init"."""
    PREVIOUS = "previous"
    """The measurement just before this one: "update since last measurement"."""
    NONE = "none"
    """No reference: the indicator describes the current state only."""


@dataclass
class Context:
    """What indicators may read besides the snapshots.

    Attributes:
        model: The user's model (read only; indicators must not change it).
        probe: The fixed probe (targets live here).
        learning_rates: ``parameter name -> learning rate`` from the optimizer's param groups (empty if unknown).
        extras: Per-indicator cache set up once in :meth:`Indicator.setup` (keyed by indicator name).
    """

    model: torch.nn.Module
    probe: Probe
    learning_rates: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class Indicator(abc.ABC):
    """One regime indicator. Subclasses set the class attributes and implement :meth:`compute`.

    Attributes:
        name: Short unique name.
        needs: Capture items this indicator reads; the monitor merges them over all indicators.
        reference: Which snapshot :meth:`compute` receives as ``reference``.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[Need]]
    reference: ClassVar[Reference]

    def setup(self, context: Context) -> None:  # noqa: B027 - optional hook, empty by default
        """Validate and cache what the indicator needs from the model, once, at attach time.

        Raises:
            ValueError: When the indicator cannot work on this model/probe (the message says how to fix it).
        """

    def applicable(self, context: Context) -> bool:
        """Whether the indicator has anything to report for this model/probe (default: always)."""
        return True

    @abc.abstractmethod
    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        """Compute this indicator's values.

        Args:
            current: The snapshot just captured.
            reference: The snapshot named by :attr:`reference` (``None`` for :attr:`Reference.NONE`, and for
                :attr:`Reference.PREVIOUS` at the first measurement).
            context: Model, probe and learning rates.

        Returns:
            A record at ``current.step`` holding the indicator's tagged values.
        """
