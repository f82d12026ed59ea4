"""What a sweep trains: the factories, the training step, the data and the probe, and how a point is built."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from regimescope.knobs import at_width
from regimescope.probe import Probe
from regimescope.sweep.builtins import BUILTIN_KNOBS, PARAMETRISATION, WIDTH
from regimescope.sweep.grid import Axis, Value


def default_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Any) -> float:
    """One step on an ``(inputs, targets)`` batch: mean squared error for float targets, cross-entropy for labels.

    Returns:
        The loss before the step.
    """
    inputs, targets = batch
    optimizer.zero_grad(set_to_none=True)
    outputs = model(inputs)
    if targets.is_floating_point():
        loss = F.mse_loss(outputs, targets.reshape(outputs.shape))
    else:
        loss = F.cross_entropy(outputs, targets)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _names(function: Callable[..., Any], skip: int) -> tuple[set[str], bool]:
    """Keyword names ``function`` accepts after its first ``skip`` positional ones, and whether it takes ``**kwargs``."""
    parameters = list(inspect.signature(function).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {p.name for p in parameters[skip:] if p.kind in kinds}
    return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


@dataclass
class SweepTask:
    """Everything a point of the sweep needs (picklable when its callables and data are, for process pools).

    Grid values reach the factories by name: ``make_model``, ``make_optimizer`` (after the model) and
    ``train_step`` (after model, optimizer, batch) each receive the grid keys their signature names (a ``**kwargs``
    receives every key that is not a built-in knob). Built-in knobs (:data:`~regimescope.sweep.builtins.BUILTIN_KNOBS`)
    are applied to the built model and reach a factory too when it names them (e.g. ``make_optimizer(model,
    init_scale)`` to adapt the learning rate).

    Attributes:
        make_model: Builds the model at initialisation.
        make_optimizer: ``make_optimizer(model, ...) -> optimizer``.
        data: Training batches; iterated again when exhausted.
        probe: The monitor's probe (with targets, so that the forecast has a task scale).
        train_step: ``train_step(model, optimizer, batch, ...) -> loss`` (:func:`default_step` by default).
        steps: Training steps per point.
        seed: Torch seed set (in a forked random state) before each point's model is built and trained.
        base_width: Base width of the NTK / muP parametrisations (default: the smallest width of the grid).
        monitor_options: Keyword arguments for :class:`~regimescope.monitor.RegimeMonitor` (e.g. ``every``,
            ``max_overhead``, ``dtype``), passed through unchanged.
    """

    make_model: Callable[..., nn.Module]
    make_optimizer: Callable[..., torch.optim.Optimizer]
    data: Iterable[Any]
    probe: Probe
    train_step: Callable[..., Any] = default_step
    steps: int = 200
    seed: int = 0
    base_width: int | None = None
    monitor_options: Mapping[str, Any] = field(default_factory=dict)

    def check(self, axes: tuple[Axis, ...]) -> None:
        """Fail before any training when a grid key reaches nothing.

        Raises:
            ValueError: For a key that is neither a built-in knob nor an argument of a factory, a
                parametrisation without a width, or a non-positive number of steps.
            TypeError: When a factory is not callable or the probe is not a ``Probe``.
        """
        for name in ("make_model", "make_optimizer", "train_step"):
            if not callable(getattr(self, name)):
                raise TypeError(f"`{name}` must be callable; received {type(getattr(self, name)).__name__}.")
        if not isinstance(self.probe, Probe):
            raise TypeError(
                f"`probe` must be a regimescope.Probe; received {type(self.probe).__name__}. Pass one, or a loader "
                "as `data` to draw it from."
            )
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"`steps` must be a positive integer; received {self.steps!r}.")
        keys = {axis.name for axis in axes}
        for key in keys:
            builtin = key in BUILTIN_KNOBS or key == PARAMETRISATION
            if not builtin and not any(self._accepts(role, key) for role in ("model", "optimizer", "step")):
                raise ValueError(
                    f"The grid key {key!r} is no built-in knob ({sorted([*BUILTIN_KNOBS, PARAMETRISATION])}) and no "
                    "argument of make_model, make_optimizer or train_step; add it to one of their signatures."
                )
        if PARAMETRISATION in keys and (WIDTH not in keys or not self._accepts("model", WIDTH)):
            raise ValueError(
                "A `parametrisation` grid needs a `width` grid key that make_model takes (make_model(width=...))."
            )

    def _function(self, role: str) -> tuple[Callable[..., Any], int]:
        return {
            "model": (self.make_model, 0),
            "optimizer": (self.make_optimizer, 1),
            "step": (self.train_step, 3),
        }[role]

    def _accepts(self, role: str, key: str) -> bool:
        function, skip = self._function(role)
        named, var = _names(function, skip)
        return key in named or (var and key not in BUILTIN_KNOBS and key != PARAMETRISATION)

    def arguments(self, role: str, values: Mapping[str, Value]) -> dict[str, Value]:
        """The grid values ``role`` (``"model"``, ``"optimizer"`` or ``"step"``) receives."""
        return {key: value for key, value in values.items() if self._accepts(role, key)}

    def build(
        self, values: Mapping[str, Value], widths: tuple[int, ...] = ()
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The point's model (factory, parametrisation, then the built-in knobs in order) and its optimizer.

        Args:
            values: The point's knob values.
            widths: The grid's widths (the smallest is the default base width).
        """
        arguments = self.arguments("model", values)
        if PARAMETRISATION in values:
            base = self.base_width if self.base_width is not None else min(widths or (int(values[WIDTH]),))
            others = {key: value for key, value in arguments.items() if key != WIDTH}
            model = at_width(
                lambda w: self.make_model(**others, width=w),
                int(values[WIDTH]),
                values[PARAMETRISATION],
                base_width=base,
            )
        else:
            model = self.make_model(**arguments)
        if not isinstance(model, nn.Module):
            raise TypeError(f"make_model returned {type(model).__name__}; expected a torch.nn.Module.")
        for name, knob in BUILTIN_KNOBS.items():
            if name in values:
                model = knob.apply(model, values[name])
        return model, self.make_optimizer(model, **self.arguments("optimizer", values))

    def batches(self) -> Iterator[Any]:
        """The training batches, cycling through ``data`` as often as needed.

        Raises:
            ValueError: When ``data`` yields no batch.
        """
        while True:
            empty = True
            for batch in self.data:
                empty = False
                yield batch
            if empty:
                raise ValueError("`data` yielded no batch; pass a loader or a list of (inputs, targets) batches.")
