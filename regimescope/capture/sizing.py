"""Sizing a measurement at ``attach()``: the most exact kernel whose cost lets the overhead budget measure often.

The cost of one measurement is dominated by the per-layer kernel: one forward pass of the probe, one backward pass
per output the kernel is taken of (a language model has ``T x V`` of them), and the layers' Gram products, which
grow with the square of the probe's examples. The overhead budget (:mod:`regimescope.budget`) spaces measurements
so that their share of wall time stays under ``max_overhead``; a measurement costing ``c`` training steps is then
made about every ``c / max_overhead`` steps. So that the regime is seen often enough, a measurement is sized to
cost about :data:`TARGET_PASSES` forward-and-backward passes of the probe (about two training steps at a batch of
the probe's size; with ``max_overhead = 5%`` the budget allows one about every 40 steps):

1. ``pass``: one forward and backward pass of the probe is timed (on copies of the buffers; nothing of the model is
   changed).
2. Output reduction: the exact kernel of every output is tried only up to :data:`EXACT_OUTPUTS` outputs; beyond,
   and whenever the exact kernel is too slow, a seeded random projection of ``m`` output combinations
   (``m`` from :data:`PROJECTIONS`) estimates the trace kernel without bias (:mod:`regimescope.ntk`), and the
   capture keeps each half of the combinations so the projection reports its own noise.
3. Probe size: when even the cheapest projection is too slow on the whole probe, the first half of the probe is
   tried, then a quarter, down to :data:`MIN_EXAMPLES` examples (the probe-half noise grows as the probe shrinks,
   and is reported).

The candidates are timed on the real computation, on small subsets of the probe (the two cheapest projections on
16 examples, the cheapest again on 32; more combinations and more examples extrapolated from them), so the sizing
needs no cost model of the hardware and costs less than one measurement of the whole probe. The choice is
made once and kept for the whole run, so the kernels stay comparable; it is saved with the monitor's state. Options
the user passes explicitly are kept as given; with ``max_overhead=None`` nothing is reduced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch.func import functional_call

from regimescope import batch
from regimescope.capture.config import CaptureConfig
from regimescope.guards import no_autocast, preserved_modes, preserved_rng
from regimescope.ntk import empirical_ntk
from regimescope.outputs import flat_outputs
from regimescope.probe import Probe

TARGET_PASSES = 2.0
"""A measurement may cost about this many forward-and-backward passes of the probe."""
EXACT_OUTPUTS = 16
"""The exact kernel of every output is tried only up to this many outputs per example."""
PROJECTIONS = (8, 4, 2)
"""Output combinations tried, most exact first."""
MIN_EXAMPLES = 16
"""The probe is never cut below this many examples."""
TRIAL_EXAMPLES = 16
"""Examples the candidate kernels are timed on (their cost on the whole probe is extrapolated)."""

Auto = Literal["auto"]
Timer = Callable[[Callable[[], Any]], float]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_seconds(fn: Callable[[], Any], device: torch.device = torch.device("cpu")) -> float:
    """Wall time of ``fn()`` (the device's queue drained before and after)."""
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


def probe_pass(model: torch.nn.Module, probe: Probe, config: CaptureConfig) -> None:
    """One forward and backward pass of ``probe`` through ``model``, on detached parameters and copied buffers."""
    params = {name: p.detach().requires_grad_(True) for name, p in model.named_parameters() if p.requires_grad}
    state = {**{name: b.clone() for name, b in model.named_buffers()}, **params}
    with (
        preserved_modes(model, train=config.mode == "train"),
        preserved_rng([probe.device]),
        no_autocast(probe.device.type),
        torch.enable_grad(),
    ):
        output = batch.call_model(lambda *args, **kwargs: functional_call(model, state, args, kwargs), probe.inputs)
        flat = flat_outputs(output, probe.size, config.output_fn)
        torch.autograd.grad(flat.sum(), list(params.values()), allow_unused=True)


@dataclass(frozen=True)
class MeasurementPlan:
    """What one measurement computes, chosen once at ``attach()`` and kept for the run.

    Attributes:
        examples: Probe examples measured (the first ``examples`` of the probe).
        probe_examples: Examples of the probe given.
        outputs: Model outputs per example (flattened).
        output_projection: Random output combinations the kernel is estimated from; ``None``: every output, exact.
        pass_seconds: Wall time of one forward and backward pass of the whole probe (``None``: not timed).
        estimated_seconds: The expected wall time of one measurement's kernel (``None``: not timed).
        reasons: Why, in a few sentences.
    """

    examples: int
    probe_examples: int
    outputs: int
    output_projection: int | None
    pass_seconds: float | None = None
    estimated_seconds: float | None = None
    reasons: tuple[str, ...] = ()

    @property
    def reduced(self) -> bool:
        """Whether the measurement estimates the full one (fewer examples, or an output projection)."""
        return self.examples < self.probe_examples or self.output_projection is not None

    def describe(self) -> str:
        """One line: what is measured."""
        probe = (
            f"{self.examples} of the probe's {self.probe_examples} examples"
            if self.examples < self.probe_examples
            else f"all {self.examples} probe examples"
        )
        if self.output_projection is None:
            outputs = f"the exact kernel of all {self.outputs} output(s)"
        else:
            outputs = f"{self.output_projection} random combinations of the {self.outputs} outputs"
        cost = "" if self.estimated_seconds is None else f", about {self.estimated_seconds:.3g} s per kernel"
        return f"{outputs} on {probe}{cost}"

    def markdown(self) -> str:
        """The plan and its reasons, a few lines."""
        return "\n".join([f"**measurement**: {self.describe()}.", *(f"- {reason}" for reason in self.reasons)])

    def to_state(self) -> dict[str, Any]:
        """Plain containers, for checkpoints."""
        return {**asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MeasurementPlan:
        """Inverse of :meth:`to_state`."""
        return cls(**{**state, "reasons": tuple(state["reasons"])})


def check_choice(name: str, value: Any, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is ``"auto"``, a valid count, or (``output_projection``) ``None``."""
    if value == "auto" or value is None and name == "output_projection":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = "'auto', None (every output, exact) or" if name == "output_projection" else "'auto' or"
        raise ValueError(f"`{name}` must be {allowed} an integer >= {minimum}; received {value!r}.")


def _candidate_sizes(total: int, measured_examples: int | Auto) -> list[int]:
    if measured_examples != "auto":
        return [min(measured_examples, total)]
    sizes = [total]
    while sizes[-1] // 2 >= MIN_EXAMPLES:
        sizes.append(sizes[-1] // 2)
    return sizes


def _candidate_projections(outputs: int, output_projection: int | None | Auto) -> list[int | None]:
    if output_projection != "auto":
        return [output_projection]
    exact: list[int | None] = [None] if outputs <= EXACT_OUTPUTS else []
    return exact + [m for m in PROJECTIONS if m < outputs]


def plan_measurement(
    model: torch.nn.Module,
    probe: Probe,
    config: CaptureConfig,
    outputs: int,
    *,
    max_overhead: float | None,
    output_projection: int | None | Auto = "auto",
    measured_examples: int | Auto = "auto",
    timer: Timer | None = None,
) -> MeasurementPlan:
    """Choose what each measurement of a run computes (see the module docstring).

    Args:
        model: The model measured (its parameters and buffers are not changed; computations run on copies).
        probe: The probe given.
        config: The capture settings (mode, dtype, output map, implementation, memory budget).
        outputs: Model outputs per example (``Probe.check``'s answer).
        max_overhead: The overhead budget; ``None`` measures exactly whatever it costs.
        output_projection: ``"auto"``, ``None`` (every output, exact) or a number of combinations, kept as given.
        measured_examples: ``"auto"`` or a number of the probe's examples to measure, kept as given.
        timer: ``timer(fn)`` returns the seconds ``fn()`` takes (tests pass a deterministic one).

    Returns:
        The plan.

    Raises:
        ValueError: For an ``output_projection`` or ``measured_examples`` that is neither ``"auto"`` nor valid.
    """
    check_choice("output_projection", output_projection, 1)
    check_choice("measured_examples", measured_examples, 2)
    n = probe.size
    sizes = _candidate_sizes(n, measured_examples)
    projections = _candidate_projections(outputs, output_projection)
    if max_overhead is None:
        m = None if output_projection == "auto" else output_projection
        return MeasurementPlan(sizes[0], n, outputs, m, reasons=("max_overhead=None: nothing is reduced.",))
    if len(sizes) == 1 and len(projections) == 1:
        given = output_projection != "auto" and measured_examples != "auto"
        reason = "The options given fix the measurement." if given else "There is nothing cheaper to choose."
        return MeasurementPlan(sizes[0], n, outputs, projections[0], reasons=(reason,))

    def timed(fn: Callable[[], Any]) -> float:
        return wall_seconds(fn, probe.device) if timer is None else timer(fn)

    timed(lambda: probe_pass(model, probe, config))  # the first pass warms the model up
    unit = timed(lambda: probe_pass(model, probe, config))
    target = TARGET_PASSES * unit
    reasons = [
        f"One forward and backward pass of the probe takes {unit:.3g} s; a measurement is sized to about "
        f"{TARGET_PASSES:g} of them ({target:.3g} s) so that the {max_overhead:.0%} budget measures often."
    ]
    if outputs > EXACT_OUTPUTS and output_projection == "auto":
        reasons.append(
            f"The model has {outputs} outputs per example: their exact kernel costs a backward pass each, so it is "
            "estimated from random output combinations (unbiased; its noise is reported)."
        )
    predict = _cost_model(model, probe, config, outputs, projections, timed)
    for size in sizes:
        for m in projections:
            cost = predict(size, m)
            if cost <= target:
                if size < n:
                    reasons.append(f"The whole probe is too slow even with the cheapest projection: {size} examples.")
                return MeasurementPlan(size, n, outputs, m, unit, cost, tuple(reasons))
    size, m = sizes[-1], projections[-1]
    cost = predict(size, m)
    reasons.append(
        f"Even the cheapest measurement ({cost:.3g} s) exceeds the target: the budget spaces measurements further."
    )
    return MeasurementPlan(size, n, outputs, m, unit, cost, tuple(reasons))


def _cost_model(
    model: torch.nn.Module,
    probe: Probe,
    config: CaptureConfig,
    outputs: int,
    projections: Sequence[int | None],
    timed: Callable[[Callable[[], Any]], float],
) -> Callable[[int, int | None], float]:
    """``cost(examples, projection)`` in seconds, from a few kernels on small subsets of the probe.

    The two cheapest projections are timed on the first :data:`TRIAL_EXAMPLES` examples (after one untimed run that
    warms the engine up); more combinations are extrapolated linearly in the number of backward passes per example
    (an exact kernel counts its outputs). The growth with the probe's size, ``(n / n_0)^a``, takes its exponent
    from the cheapest projection timed again on twice the examples (``a`` between 1, the passes over examples, and
    2, the Gram products), or 2 when the probe is too small to tell.
    """

    def kernel(size: int, m: int | None) -> Callable[[], Any]:
        options = {**config.kernel_options(), "output_projection": m}
        kind = "full" if (m or 0) >= 2 else "trace"
        inputs = probe.subset(size).inputs
        return lambda: empirical_ntk(model, inputs, kind=kind, **options)

    def width(m: int | None) -> int:
        """Backward passes per example: ``m`` combinations, or every output for the exact kernel."""
        return outputs if m is None else m

    small = min(TRIAL_EXAMPLES, probe.size)
    cheapest = projections[-1]
    kernel(small, cheapest)()  # warm-up, untimed
    seconds = {m: timed(kernel(small, m)) for m in projections[-2:]}
    if len(seconds) == 2:
        (m_a, t_a), (m_b, t_b) = seconds.items()
        slope = (t_a - t_b) / (width(m_a) - width(m_b)) if width(m_a) != width(m_b) else 0.0
        for m in projections[:-2]:
            seconds[m] = t_b + max(slope, 0.0) * (width(m) - width(m_b))
    growth = 2.0
    if probe.size >= 2 * small and seconds[cheapest] > 0:
        ratio = timed(kernel(2 * small, cheapest)) / seconds[cheapest]
        growth = min(2.0, max(1.0, math.log2(ratio))) if ratio > 0 else 2.0
    return lambda size, m: seconds[m] * (size / small) ** growth
