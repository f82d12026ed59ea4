"""Which knob would move a run across the lazy/rich boundary, and by about how much (from the step-0 forecast).

The forecast's lazy ratio ``q`` (:mod:`regimescope.forecast.lazy_ratio`) is the kernel change the lazy solution
needs to fit the probe; below :data:`~regimescope.forecast.LAZY_RATIO` the kernel regime is self-consistent. The
advice re-runs the forecast on rescaled copies of the step-0 model, for each knob whose effect theory knows to be
monotone (the initialisation scale and Chizat's centred output scale: smaller is richer), and finds the factor at
which ``q`` crosses the boundary by bracketing in powers of two, then bisecting and interpolating in log space. The
model being trained is never touched: the advice works on a copy holding the step-0 weights.

It reports two factors per knob: where the forecast crosses the boundary, and where it lies as far beyond it as the
calibration runs did (:data:`CLEAR_MARGIN`), which is the factor to try.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.forecast import LAZY_RATIO, Forecast, forecast_regime
from regimescope.guards import shadow_copy
from regimescope.knobs.init_scale import scale_init
from regimescope.knobs.output_scale import scale_output
from regimescope.ntk import empirical_ntk
from regimescope.outputs import OutputFn
from regimescope.probe import Probe
from regimescope.tags import LAZY, RICH
from regimescope.verdict.labeler import Verdict

CLEAR_MARGIN = 3.6
"""How far past the boundary (as a factor on ``q``) the advised setting lies: the calibration's lazy runs needed
``q <= 0.023`` and its rich runs ``q >= 0.31`` on their fast directions, each about 3.6 times from ``LAZY_RATIO``."""
MAX_FACTOR = 1024.0
"""Largest factor (or smallest, ``1 / MAX_FACTOR``) a knob is searched over."""
REFINEMENTS = 2
"""Log-space bisections after the power-of-two bracket (the last step interpolates ``log q`` linearly)."""

KNOBS: dict[str, tuple[str, Callable[[nn.Module, float], nn.Module]]] = {
    "init_scale": ("initialisation", lambda model, c: scale_init(model, c)),
    "output_scale": ("centred output alpha (f - f_0)", lambda model, c: scale_output(model, c, centred=True)),
}
"""Knobs the advice searches: name -> (what is scaled, how). Both are richer when smaller."""


@dataclass(frozen=True)
class Move:
    """How far one knob must be turned for the forecast to change side.

    Attributes:
        knob: ``"init_scale"`` or ``"output_scale"``.
        goal: ``"rich"`` (the fast-direction ratio rises above the boundary) or ``"lazy"`` (the full ratio falls
            below it).
        boundary: The factor at which the forecast crosses the boundary.
        clear: The factor at which it lies :data:`CLEAR_MARGIN` beyond it (the one to try).
        kernel_scale: ``|K|_F`` after the ``clear`` factor over ``|K|_F`` before: divide the learning rate by it to
            train at the same speed.
    """

    knob: str
    goal: str
    boundary: float
    clear: float
    kernel_scale: float

    def sentence(self) -> str:
        """The move in words, with the call that makes it and the learning rate that keeps the speed."""
        call = (
            f"`scale_init(model, {self.clear:.2g})`"
            if self.knob == "init_scale"
            else f"`scale_output(model, {self.clear:.2g}, centred=True)`"
        )
        return (
            f"{KNOBS[self.knob][0]} x{self.clear:.2g} ({call}; boundary at x{self.boundary:.2g}; the kernel scales by "
            f"{self.kernel_scale:.2g}, so the learning rate x{1 / self.kernel_scale:.2g} keeps the speed)"
        )


@dataclass(frozen=True)
class Advice:
    """The advice for one run.

    Attributes:
        text: One markdown paragraph (what ``explain()`` shows).
        moves: The moves found, by knob and goal (empty when the forecast cannot tell).
        forecast: The forecast of the step-0 model the advice started from (``None`` if it could not be made).
    """

    text: str
    moves: tuple[Move, ...] = ()
    forecast: Forecast | None = None

    def move(self, knob: str, goal: str) -> Move | None:
        """The move of ``knob`` towards ``goal``, or ``None``."""
        return next((m for m in self.moves if m.knob == knob and m.goal == goal), None)

    def __str__(self) -> str:
        return self.text


def model_at_init(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` holding the step-0 parameter values ``weights`` (e.g. the monitor's init snapshot).

    Buffers (BatchNorm statistics) are the model's current ones; parameters missing from ``weights`` (frozen ones)
    keep their current values, which are their initial ones.

    Raises:
        ValueError: When ``weights`` names a parameter the model does not have, or a shape differs.
    """
    copied = shadow_copy(model, share_parameters=False)
    params = dict(copied.named_parameters())
    unknown = sorted(set(weights) - set(params))
    if unknown:
        raise ValueError(
            f"`weights` holds {unknown[:5]}, which the model does not have; pass the same model's weights."
        )
    with torch.no_grad():
        for name, value in weights.items():
            if params[name].shape != value.shape:
                raise ValueError(
                    f"`weights[{name!r}]` has shape {tuple(value.shape)}; the model's has {tuple(params[name].shape)}."
                )
            params[name].copy_(value)
    return copied


class _Forecaster:
    """The forecast's two lazy ratios of the knob-scaled copies of one model, remembered per factor."""

    def __init__(self, model: nn.Module, probe: Probe, settings: Mapping[str, object]) -> None:
        self.model = model
        self.probe = probe
        self.settings = settings
        self._cache: dict[tuple[str, float], Forecast] = {}

    def forecast(self, knob: str, factor: float) -> Forecast:
        key = (knob, factor)
        if key not in self._cache:
            scaled = self.model if factor == 1 else KNOBS[knob][1](self.model, factor)
            self._cache[key] = forecast_regime(scaled, self.probe, **self.settings)
        return self._cache[key]

    def ratio(self, knob: str, factor: float, goal: str) -> float:
        forecast = self.forecast(knob, factor)
        ratio = forecast.fast if goal == RICH else forecast.full
        return math.nan if ratio is None else ratio.change

    def kernel_norm(self, knob: str, factor: float) -> float:
        scaled = self.model if factor == 1 else KNOBS[knob][1](self.model, factor)
        kernel = empirical_ntk(
            scaled,
            self.probe.inputs,
            output_fn=self.settings.get("output_fn"),
            mode=str(self.settings.get("mode", "eval")),
            dtype=self.settings.get("dtype", torch.float32),
        )
        return float(kernel.double().norm())


def _crossing(forecaster: _Forecaster, knob: str, goal: str, target: float) -> float | None:
    """The factor at which the goal's ratio reaches ``target`` (``1`` if it already has, ``None`` if no factor within
    :data:`MAX_FACTOR` does).

    Smaller factors raise the ratio (richer), larger ones lower it; the bracket doubles (or halves) the factor until
    the ratio passes ``target``, then bisects and interpolates ``log q`` linearly in ``log factor``.
    """
    step = 0.5 if goal == RICH else 2.0
    passed = (lambda q: q >= target) if goal == RICH else (lambda q: q < target)
    if passed(forecaster.ratio(knob, 1.0, goal)):
        return 1.0
    near, far = 1.0, step
    while not passed(forecaster.ratio(knob, far, goal)):
        if not math.isfinite(forecaster.ratio(knob, far, goal)) or abs(math.log2(far)) >= math.log2(MAX_FACTOR):
            return None
        near, far = far, far * step
    for _ in range(REFINEMENTS):
        middle = math.sqrt(near * far)
        if passed(forecaster.ratio(knob, middle, goal)):
            far = middle
        else:
            near = middle
    q_near, q_far = forecaster.ratio(knob, near, goal), forecaster.ratio(knob, far, goal)
    if not (q_near > 0 and q_far > 0) or q_near == q_far:
        return far
    weight = (math.log(target) - math.log(q_near)) / (math.log(q_far) - math.log(q_near))
    return math.exp(math.log(near) + min(max(weight, 0.0), 1.0) * (math.log(far) - math.log(near)))


def _goals(label: str | None, forecast: Forecast) -> tuple[list[str], str | None]:
    """The goals for a measured label, or a reason the forecast cannot tell."""
    side = forecast.label
    if label == LAZY:
        if side == RICH:
            return [], "the forecast puts this run on the rich side while the kernel measured lazy"
        return [RICH], None
    if label == RICH:
        if side == LAZY:
            return [], "the forecast puts this run on the lazy side while the kernel measured rich"
        return [LAZY], None
    return [RICH, LAZY], None


def advise(
    model: nn.Module,
    probe: Probe,
    verdict: Verdict | None,
    *,
    knobs: tuple[str, ...] = tuple(KNOBS),
    learning_rates: Mapping[str, float] | None = None,
    output_fn: OutputFn | None = None,
    mode: str = "eval",
    dtype: torch.dtype = torch.float32,
) -> Advice:
    """Which knob would move the run across the lazy/rich boundary, by re-running the forecast on rescaled copies.

    Args:
        model: The model at step 0 (a copy: :func:`model_at_init` builds one from the monitor's step-0 weights).
            It is only read; every rescaled version is a new copy.
        probe: The monitor's probe, with targets (without them the forecast has no scale to judge by).
        verdict: The current verdict; ``None`` uses the forecast's own label. A lazy run gets the moves to the rich
            side, a rich one the moves to the lazy side, a transitional one both.
        knobs: Which of :data:`KNOBS` to search.
        learning_rates: ``parameter name -> lr`` of the step-0 model (as for ``forecast_regime``).
        output_fn: Maps the model's return value to the output tensor.
        mode: ``"eval"`` or ``"train"`` behaviour during the forecasts.
        dtype: Compute dtype of the kernels.

    Returns:
        The advice; its text says when the forecast cannot tell (no targets, a forecast that disagrees with the
        measured label, or no factor within :data:`MAX_FACTOR` that crosses).

    Raises:
        ValueError: For a knob name outside :data:`KNOBS`.
    """
    unknown = [knob for knob in knobs if knob not in KNOBS]
    if unknown:
        raise ValueError(f"`knobs` has {unknown}; expected names from {list(KNOBS)}.")
    settings = {"learning_rates": learning_rates, "output_fn": output_fn, "mode": mode, "dtype": dtype}
    forecaster = _Forecaster(model, probe, settings)
    start = forecaster.forecast(knobs[0] if knobs else "init_scale", 1.0)
    if start.label is None or start.full is None or start.fast is None:
        return Advice(f"Advice: the forecast cannot tell which knob moves this run ({start.reasons[0]})", (), start)
    label = verdict.label if verdict is not None else (LAZY if start.label == LAZY else RICH)
    goals, reason = _goals(label, start)
    need = (
        f"fitting the probe with the initial kernel would change it by {start.full.change:.2g} of its norm "
        f"(lazy below {LAZY_RATIO})"
    )
    if reason is not None:
        return Advice(f"Advice: the forecast cannot tell which knob moves this run: {reason} ({need}).", (), start)
    moves, missing = [], []
    for goal in goals:
        for knob in knobs:
            boundary = _crossing(forecaster, knob, goal, LAZY_RATIO)
            target = LAZY_RATIO * CLEAR_MARGIN if goal == RICH else LAZY_RATIO / CLEAR_MARGIN
            clear = None if boundary is None else _crossing(forecaster, knob, goal, target)
            if clear is None:
                missing.append(f"{KNOBS[knob][0]} ({goal})")
                continue
            scale = forecaster.kernel_norm(knob, clear) / forecaster.kernel_norm(knob, 1.0)
            moves.append(Move(knob, goal, boundary, clear, scale))
    parts = []
    for goal in goals:
        found = [move for move in moves if move.goal == goal]
        if any(move.clear == 1 for move in found):
            parts.append(f"the forecast already puts it on the {goal} side")
        elif found:
            parts.append(f"to the {goal} side: {' or '.join(move.sentence() for move in found)}")
    if missing:
        parts.append(f"no factor within {MAX_FACTOR:g}x crosses for {', '.join(missing)}")
    if not moves:
        return Advice(
            f"Advice: the forecast cannot tell which knob moves this run: {'; '.join(parts)} ({need}).", (), start
        )
    return Advice(f"Advice ({label}, from the forecast): {need}; " + "; ".join(parts) + ".", tuple(moves), start)
