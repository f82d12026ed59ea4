"""Training loop of the demo runs: full-batch gradient descent on the mean squared error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from regimescope.demo.initialisation import make_student
from regimescope.demo.scenarios import ScenarioSpec
from regimescope.demo.student import TwoLayerReLU
from regimescope.demo.teacher_student import make_teacher_student

logger = logging.getLogger(__name__)


@dataclass
class TrainHistory:
    """What one demo run did.

    Attributes:
        losses: Training loss ``L_t = mean_i (f_t(x_i) - y_i)^2`` after ``t`` steps, ``t = 0 ... steps``.
        seconds: Wall-clock time of the loop, callbacks (e.g. a monitor's measurements) included.
    """

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def initial_loss(self) -> float:
        """``L_0``, the loss of the initial function."""
        return self.losses[0]

    @property
    def final_loss(self) -> float:
        """``L_T``, the loss after the last step."""
        return self.losses[-1]


def make_model(spec: ScenarioSpec, quick: bool) -> TwoLayerReLU:
    """The student of a scenario, initialised (same weights on every call).

    Args:
        spec: The scenario.
        quick: Whether to use the quick budget's width.

    Returns:
        The student.
    """
    return make_student(spec.init, spec.dim, spec.budget(quick).width, spec.seed)


def make_optimizer(spec: ScenarioSpec, model: torch.nn.Module) -> torch.optim.SGD:
    """Plain gradient descent (no momentum, no weight decay) with the scenario's step size.

    Plain steps keep the per-unit balance ``delta_k`` conserved up to the ``O(lr^2)`` drift of theory.md
    section 2, so the monitor's conservation panels show the initialisation's balance throughout.

    Args:
        spec: The scenario.
        model: The student to optimise.

    Returns:
        The optimiser.
    """
    return torch.optim.SGD(model.parameters(), lr=spec.lr)


def train(
    spec: ScenarioSpec,
    quick: bool = False,
    *,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    callback: Callable[[int], None] | None = None,
) -> tuple[torch.nn.Module, TrainHistory]:
    """Run a scenario: full-batch gradient descent on ``L = mean_i (f(x_i) - y_i)^2`` over its training set.

    To monitor a run, build the model and optimiser first, attach the monitor to them, and pass them in::

        model = make_model(spec, quick)
        optimizer = make_optimizer(spec, model)
        monitor = RegimeMonitor(model, probe, optimizer=optimizer, every=spec.measurement_interval(quick))
        monitor.attach()
        model, history = train(spec, quick, model=model, optimizer=optimizer)

    Args:
        spec: The scenario.
        quick: Use the quick budget (fewer steps, smaller wide net).
        model: The student to train; :func:`make_model` of the scenario when ``None``.
        optimizer: Optimiser over ``model``'s parameters; :func:`make_optimizer` when ``None``.
        callback: Called as ``callback(t)`` after update ``t = 1 ... steps`` (e.g. ``monitor.step``).

    Returns:
        ``(model, history)``: the trained student and its loss curve and runtime.

    Raises:
        ValueError: If an ``optimizer`` is given without the ``model`` it optimises.
    """
    if optimizer is not None and model is None:
        raise ValueError("`optimizer` was given without `model`; pass the model the optimizer was built on.")
    if model is None:
        model = make_model(spec, quick)
    if optimizer is None:
        optimizer = make_optimizer(spec, model)
    x, y = make_teacher_student(spec.n_train, spec.dim, spec.seed, dtype=next(model.parameters()).dtype)
    steps = spec.budget(quick).steps
    history = TrainHistory()
    start = time.perf_counter()
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        history.losses.append(loss.item())
        if callback is not None:
            callback(step)
    with torch.no_grad():
        history.losses.append(F.mse_loss(model(x), y).item())
    history.seconds = time.perf_counter() - start
    logger.info(
        "demo run %r: loss %.3g -> %.3g in %d steps (%.1f s)",
        spec.name,
        history.initial_loss,
        history.final_loss,
        steps,
        history.seconds,
    )
    return model, history
