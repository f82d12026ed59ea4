"""The five runs of ``regimescope demo``: initialisations whose regime theory predicts (theory.md 6.3, 6.6).

All runs fit the same teacher-student task (:mod:`regimescope.demo.teacher_student`) with full-batch gradient
descent on the mean squared error, start from the zero function (mirrored initialisations), and differ only in
the initialisation (and the step size its kernel scale allows):

- ``balanced``: small scale, ``delta_k = 0``. Rich: the kernel grows by orders of magnitude and turns.
- ``upstream``: small scale, ``delta_k > 0`` (small first layer). Rich: the fast first layer flips activation
  patterns, and the kernel turns through them.
- ``downstream``: small scale, ``delta_k < 0`` (small readout). Lazy early: the readout fits on the first layer's
  fixed random features; the kernel starts to move only later (delayed rich).
- ``large``: large scale, balanced. Lazy: the kernel stays put.
- ``wide-ntk``: NTK parametrisation, Gaussian weights, large width. Lazy: relative changes shrink as ``m^{-1/2}``.

Calibrated with the closed-form NTK on the 96-point probe (``tests/demo``): in quick mode the rich runs end with
kernel distance ``S(K_0, K_T) ~ 0.2`` (balanced: relative change ~ 20), the lazy ones with ``S ~ 1e-4`` and
relative change ~ 0.02, and downstream with ``S ~ 3e-3`` after ``S < 1e-3`` for its first tenth; every run brings
the loss below 1% of its initial value. Step sizes keep ``2 lr lambda_max(K_train) / n`` at most ~1.1 throughout
(gradient descent is stable below 2), so no run owes its kernel change to a large-step (catapult) instability.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from regimescope.demo.initialisation import InitSpec, Parametrisation
from regimescope.demo.teacher_student import DEFAULT_DIM

DEFAULT_MEASUREMENTS = 32
"""Monitor measurements per demo run (the CLI spaces them evenly over the steps)."""


class Expectation(enum.Enum):
    """The regime theory predicts for a run (``str()`` gives the value, e.g. ``"lazy early"``)."""

    LAZY = "lazy"
    """The NTK on the probe barely moves: kernel distance ``S(K_0, K_T) << 1``, relative change ``<< 1``."""
    RICH = "rich"
    """The NTK moves: large kernel distance, or growth by orders of magnitude from a small initialisation."""
    LAZY_EARLY = "lazy early"
    """Lazy while the readout fits on fixed random features; the kernel moves only later (delayed rich)."""

    def __str__(self) -> str:
        """The plain value, for tables."""
        return self.value


@dataclass(frozen=True)
class Budget:
    """Size and length of one run.

    Attributes:
        width: Hidden units of the student.
        steps: Gradient-descent steps.
    """

    width: int
    steps: int


@dataclass(frozen=True)
class ScenarioSpec:
    """One demo run.

    Attributes:
        name: Short name (used in the CLI table and as the run's log folder).
        description: One line for the CLI table.
        init: Initialisation of the student.
        lr: Gradient-descent step size (the same in both modes).
        full: Width and steps of the full demo.
        quick: Width and steps of ``regimescope demo --quick``.
        expected: The regime theory predicts.
        dim: Input dimension of the task.
        n_train: Training examples (one full batch).
        seed: Seed of the task and of the student's weights.
    """

    name: str
    description: str
    init: InitSpec
    lr: float
    full: Budget
    quick: Budget
    expected: Expectation
    dim: int = DEFAULT_DIM
    n_train: int = 256
    seed: int = 0

    def budget(self, quick: bool) -> Budget:
        """The budget of the full (``quick=False``) or quick run."""
        return self.quick if quick else self.full

    def measurement_interval(self, quick: bool, measurements: int = DEFAULT_MEASUREMENTS) -> int:
        """Steps between monitor measurements so that a run gets about ``measurements`` of them.

        Args:
            quick: Whether the run uses the quick budget.
            measurements: Desired number of measurements after initialisation.

        Returns:
            ``max(1, steps // measurements)``.
        """
        return max(1, self.budget(quick).steps // measurements)


SMALL_WIDTH = 64
"""Hidden units of the four small students (the wide run has its own widths)."""

SMALL_SCALE = 0.05
"""``tau`` of the small-scale runs: per-unit weight norms ``|a_k| |(w_k, b_k)| = tau^2``."""

SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        name="balanced",
        description="small init, balanced layers (delta_k = 0)",
        init=InitSpec(scale=SMALL_SCALE, balance=0.0),
        lr=0.1,
        full=Budget(width=SMALL_WIDTH, steps=2000),
        quick=Budget(width=SMALL_WIDTH, steps=600),
        expected=Expectation.RICH,
    ),
    ScenarioSpec(
        name="upstream",
        description="small init, small first layer (delta_k = +1)",
        init=InitSpec(scale=SMALL_SCALE, balance=1.0),
        lr=0.015,
        full=Budget(width=SMALL_WIDTH, steps=2000),
        quick=Budget(width=SMALL_WIDTH, steps=600),
        expected=Expectation.RICH,
    ),
    ScenarioSpec(
        name="downstream",
        description="small init, small readout (delta_k = -2)",
        init=InitSpec(scale=SMALL_SCALE, balance=-2.0),
        lr=0.02,
        full=Budget(width=SMALL_WIDTH, steps=4000),
        quick=Budget(width=SMALL_WIDTH, steps=1500),
        expected=Expectation.LAZY_EARLY,
    ),
    ScenarioSpec(
        name="large",
        description="large init, balanced layers (tau = 3)",
        init=InitSpec(scale=3.0, balance=0.0),
        lr=0.0012,
        full=Budget(width=SMALL_WIDTH, steps=4000),
        quick=Budget(width=SMALL_WIDTH, steps=1500),
        expected=Expectation.LAZY,
    ),
    ScenarioSpec(
        name="wide-ntk",
        description="NTK parametrisation, Gaussian init, wide",
        init=InitSpec(scale=1.0, balance=None, parametrisation=Parametrisation.NTK),
        lr=0.5,
        full=Budget(width=4096, steps=1000),
        quick=Budget(width=1024, steps=400),
        expected=Expectation.LAZY,
    ),
)
"""The demo's runs, in the order the CLI shows them."""


def get_scenario(name: str) -> ScenarioSpec:
    """Look up a scenario by name.

    Args:
        name: One of the names in :data:`SCENARIOS`.

    Returns:
        The scenario.

    Raises:
        KeyError: If no scenario has that name (the message lists the valid names).
    """
    for spec in SCENARIOS:
        if spec.name == name:
            return spec
    raise KeyError(f"No demo scenario named {name!r}; choose one of {[spec.name for spec in SCENARIOS]}.")
