"""The contract every indicator keeps: what it needs, what it compares against, what it writes, which way is rich."""

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

    from regimescope.conservation.pairs import LayerPair
    from regimescope.probe import Probe


class Reference(enum.Enum):
    """Which earlier snapshot an indicator compares the current one with."""

    INIT = "init"
    """The first measurement of the run (step 0): "distance from init"."""
    PREVIOUS = "previous"
    """The measurement just before this one: "update since last measurement"."""
    NONE = "none"
    """No reference: the indicator describes the current state only."""


class Direction(enum.Enum):
    """Which way a quantity moves when training is richer (feature learning) rather than lazier."""

    HIGHER = "higher"
    """Larger values mean richer training (e.g. the kernel distance from init)."""
    LOWER = "lower"
    """Smaller values mean richer training (e.g. CKA of a representation to its initial value)."""
    NONE = "none"
    """Context, not a regime direction (e.g. a kernel's share per layer, a cost, a noise estimate)."""


@dataclass(frozen=True)
class Output:
    """One tag family an indicator writes.

    Attributes:
        tag: The tag (from :mod:`regimescope.tags`); per-layer values are written under ``<tag>/<layer>``.
        rich_when: Which way the value moves in rich training.
        per_layer: Whether the values are per layer (or layer pair) under ``<tag>/<layer>``.
        evidence: The verdict evidence this quantity is (a key of :data:`regimescope.verdict.score.RAMPS`, e.g.
            ``"direction"``), or ``None`` when it is not part of the richness score.
        noisy: Whether the indicator also writes the quantity's noise under :func:`regimescope.tags.noise_tag`.
    """

    tag: str
    rich_when: Direction = Direction.NONE
    per_layer: bool = False
    evidence: str | None = None
    noisy: bool = False


@dataclass
class Context:
    """What indicators may read besides the snapshots.

    Attributes:
        model: The module measured (read only; indicators must not change it).
        probe: The fixed probe (targets live here).
        learning_rates: ``parameter name -> learning rate`` from the optimizer's param groups (empty if unknown).
        optimizer: The optimizer training the model, or ``None``.
        trained: The module the optimizer trains (the model itself, unless ``model`` is a replica of a sharded one).
        gradients_readable: Whether ``trained``'s ``.grad`` after an optimizer step holds the whole gradient (not a
            shard of it), so that per-step observations can read it.
    """

    model: torch.nn.Module
    probe: Probe
    learning_rates: dict[str, float] | None = None
    optimizer: torch.optim.Optimizer | None = None
    trained: torch.nn.Module | None = None
    gradients_readable: bool = True
    _layer_pairs: list[LayerPair] | Exception | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.learning_rates = dict(self.learning_rates or {})
        if self.trained is None:
            self.trained = self.model

    def layer_pairs(self) -> list[LayerPair]:
        """The model's layer pairs (:func:`~regimescope.conservation.discovery.find_layer_pairs`), traced once and
        shared: the balance indicator and the step-0 forecast both read them.

        Raises:
            Exception: What the discovery raised (a ``ValueError`` for a model ``torch.fx`` cannot trace), each time.
        """
        if self._layer_pairs is None:
            from regimescope.conservation.discovery import find_layer_pairs

            try:
                self._layer_pairs = find_layer_pairs(self.model)
            except Exception as error:
                self._layer_pairs = error
        if isinstance(self._layer_pairs, Exception):
            raise self._layer_pairs
        return list(self._layer_pairs)


class Indicator(abc.ABC):
    """One regime indicator (or a small family of them). Subclasses set the class attributes and implement
    :meth:`compute`; the monitor runs every indicator the same way, from these declarations.

    Attributes:
        name: Short unique name (the key of the indicator's state in checkpoints).
        needs: Capture items this indicator reads; the monitor merges them over all indicators so the expensive
            capture (the per-layer NTK) runs once.
        reference: Which snapshot :meth:`compute` receives as ``reference``.
        outputs: The tag families the indicator writes, with the direction that means rich.
        screens: Whether the indicator screens a capture for validity: a screening indicator runs first, and a
            non-empty record from it means the capture is unusable (e.g. non-finite weights), so the other indicators
            and the verdict are skipped for that measurement.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[Need]]
    reference: ClassVar[Reference]
    outputs: ClassVar[tuple[Output, ...]] = ()
    screens: ClassVar[bool] = False

    def setup(self, context: Context) -> None:  # noqa: B027 - optional hook, empty by default
        """Validate and cache what the indicator needs from the model, once, at attach time.

        Raises:
            ValueError: When the indicator cannot work on this model/probe (the message says how to fix it).
        """

    def applicable(self, context: Context) -> bool:
        """Whether the indicator has anything to report for this model/probe (default: always)."""
        return True

    @property
    def observes_steps(self) -> bool:
        """Whether :meth:`observe_step` does anything (the monitor then calls it after optimizer steps)."""
        return type(self).observe_step is not Indicator.observe_step

    def observe_step(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:  # noqa: B027 - optional hook
        """Read what an optimizer step did (called right after ``optimizer.step()``, before ``zero_grad``).

        Only indicators that accumulate something between measurements override it; it must be cheap and must not
        change anything it reads. The monitor calls it after every optimizer step while that costs little of its
        overhead budget, and otherwise after every ``steps``-th one (:meth:`~regimescope.budget.OverheadBudget.
        observation_stride`): the step observed then stands for itself and the ``steps - 1`` steps after it, which
        are not observed.

        Args:
            optimizer: The optimizer that just stepped.
            steps: How many optimizer steps this observation stands for (1: every step is observed).
        """

    @abc.abstractmethod
    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        """Compute this indicator's values.

        Args:
            current: The snapshot just captured.
            reference: The snapshot named by :attr:`reference` (``None`` for :attr:`Reference.NONE`, and for
                :attr:`Reference.PREVIOUS` at the first measurement).
            context: Model, probe, learning rates and optimizer.

        Returns:
            A record at ``current.step`` holding the indicator's tagged values.
        """

    def state_dict(self) -> dict[str, Any]:
        """The indicator's running state as plain containers and tensors (default: none), for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook, empty by default
        """Restore :meth:`state_dict` output (called after :meth:`setup`)."""
