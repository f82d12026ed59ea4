"""Sizing a measurement: the most exact kernel whose cost lets the overhead budget measure often.

The cost of one measurement is dominated by the per-layer kernel: one forward pass of the probe, one backward pass
per output the kernel is taken of (a language model has ``T x V`` of them), and the layers' Gram products, which
grow with the square of the probe's examples. The overhead budget (:mod:`regimescope.budget`) spaces measurements
so that their time stays under ``max_overhead`` times the training's; a measurement costing ``c`` training steps is
then made about every ``c / (0.9 max_overhead)`` steps (a tenth of the budget is kept for what its clock cannot
see). So that the regime is seen often enough, a measurement is sized to
cost about :data:`TARGET_PASSES` forward-and-backward pass of the probe (about one training step at a batch of the
probe's size, two at half of it; with ``max_overhead = 5%`` the budget allows one about every 22 to 45 steps):

1. Output reduction: the exact kernel of every output only up to :data:`EXACT_OUTPUTS` outputs; beyond, and
   whenever the exact kernel is too slow, a seeded random projection of ``m`` output combinations (``m`` from
   :data:`PROJECTIONS`) estimates the trace kernel without bias (:mod:`regimescope.ntk`), and the capture keeps
   each half of the combinations so the projection reports its own noise.
2. Probe size: when even the cheapest projection is too slow on the whole probe, the first half of the probe, then a
   quarter, down to :data:`MIN_EXAMPLES` examples (the sampling noise grows as the probe shrinks, and is reported).

No trial kernel is computed: the step-0 measurement is the trial (:class:`Sizing`). The monitor times one
forward and backward pass of the probe, picks a first plan from that time and a prior cost model, and times the
step-0 measurement made with it; when another plan is predicted to fit the target better, step 0 is measured again
with it (the model has not moved). The choice is kept for the whole run, so the kernels stay comparable, and saved
with the monitor's state. Options the user passes explicitly are kept as given; with ``max_overhead=None`` nothing
is reduced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from regimescope.capture.config import CaptureConfig
from regimescope.guards import no_autocast, preserved_modes, preserved_rng
from regimescope.ntk.model.model_call import ModelCall
from regimescope.probe import Probe

TARGET_PASSES = 1.0
"""A measurement may cost about this many forward-and-backward passes of the probe. At 2 (the first choice), a
300-step run at the 5 % budget made 3 measurements on the causal transformer LM of ``benchmarks/overhead.py`` (its
probe of 64 sequences is twice its batch, so a measurement cost about four of its training steps) and 4 to 5 on
ResNet-18; at 1, 5 to 6 and 9 to 11 over three runs, with ``benchmarks/verdicts.py`` still 20/20 under the budget.
The price is noise: half the output combinations (or examples) per kernel, which each measurement reports
(``regimescope/noise/...``)."""
EXACT_OUTPUTS = 16
"""The exact kernel of every output is tried only up to this many outputs per example."""
PROJECTIONS = (8, 4, 2)
"""Output combinations tried, most exact first."""
MIN_EXAMPLES = 16
"""The probe is never cut below this many examples."""
FIRST_WIDTH = 4
"""Without a timed probe pass, the first plan has at most this many backward passes per example."""
PRIOR_PASSES = 2.0
"""The prior cost model: a kernel of ``w`` backward passes per example on ``n`` of the probe's ``N`` examples costs
about ``PRIOR_PASSES (1 + w) (n / N)^1.5`` probe passes. Measured on one CPU thread (``kernel seconds / ((1 + w)
(n / N)^1.5 pass seconds)`` after ``attach()``): 2.1 on the causal transformer LM and 2.3 on the ResNet-18 of
``benchmarks/overhead.py``, 2.7 on its small CNN, 7 on a narrow 18-layer ResNet (width 8) whose per-layer overheads
outweigh its arithmetic. The first plan only needs to be near: the step-0 measurement corrects it."""

Auto = Literal["auto"]


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
    """One forward and backward pass of ``probe`` through ``model``, as a measurement runs it
    (:class:`~regimescope.ntk.model.model_call.ModelCall`: detached parameters, copied buffers, the compute dtype)."""
    call = ModelCall.build(model, config.dtype, config.output_fn)
    leaves = {name: call.params[name].requires_grad_(True) for name, p in model.named_parameters() if p.requires_grad}
    with (
        preserved_modes(model, train=config.mode == "train"),
        preserved_rng([probe.device]),
        no_autocast(probe.device.type),
        torch.enable_grad(),
    ):
        flat = call(leaves, call.prepare(probe.inputs))
        torch.autograd.grad(flat.sum(), list(leaves.values()), allow_unused=True)


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


class Sizing:
    """The sizing of one run's measurements: the candidates, the first plan, and its revision once it is timed.

    Candidates, most exact first: projections (the exact kernel up to :data:`EXACT_OUTPUTS` outputs, then
    :data:`PROJECTIONS` combinations below the output count) on the whole probe, then on its first half, quarter, ...
    (not below :data:`MIN_EXAMPLES`). Every cost is predicted as ``c (1 + w) (n / N)^1.5`` for ``w`` backward passes
    per example on ``n`` of the probe's ``N`` examples (one forward and ``w`` backward passes per example, Gram
    products between linear and quadratic in the probe), anchored on a measured cost ``c``. The first plan is the
    most exact one predicted within the target by the prior ``c = PRIOR_PASSES x`` one timed probe pass (without
    a timed pass: the most exact of at most :data:`FIRST_WIDTH` backward passes per example on the whole probe).
    The monitor times it on the step-0 measurement; :meth:`revise` then predicts every candidate's cost from that
    measured cost and picks the most exact within the target. The model is still at its initialisation, so a
    revised plan's step-0 measurement is simply made again.

    Args:
        probe_examples: Examples of the probe given.
        outputs: Model outputs per example (``Probe.check``'s answer).
        max_overhead: The overhead budget; ``None`` measures exactly whatever it costs (nothing is sized).
        output_projection: ``"auto"``, ``None`` (every output, exact) or a number of combinations, kept as given.
        measured_examples: ``"auto"`` or a number of the probe's examples to measure, kept as given.

    Raises:
        ValueError: For an ``output_projection`` or ``measured_examples`` that is neither ``"auto"`` nor valid.
    """

    def __init__(
        self,
        probe_examples: int,
        outputs: int,
        *,
        max_overhead: float | None,
        output_projection: int | None | Auto = "auto",
        measured_examples: int | Auto = "auto",
    ) -> None:
        check_choice("output_projection", output_projection, 1)
        check_choice("measured_examples", measured_examples, 2)
        self.probe_examples, self.outputs, self.max_overhead = probe_examples, outputs, max_overhead
        self.sizes = _candidate_sizes(probe_examples, measured_examples)
        self.projections = _candidate_projections(outputs, output_projection)
        if max_overhead is None:
            self.projections = [None if output_projection == "auto" else output_projection]
            self.sizes = self.sizes[:1]
        self.given = output_projection != "auto" and measured_examples != "auto"

    @property
    def adaptive(self) -> bool:
        """Whether there is a choice to make (a budget, and more than one candidate)."""
        return self.max_overhead is not None and (len(self.sizes) > 1 or len(self.projections) > 1)

    def _width(self, m: int | None) -> int:
        return self.outputs if m is None else m

    def _predict(self, seconds: float, plan: tuple[int, int | None], candidate: tuple[int, int | None]) -> float:
        """The cost of ``candidate`` (examples, projection) from ``plan``'s cost ``seconds``."""
        width = (1 + self._width(candidate[1])) / (1 + self._width(plan[1]))
        return seconds * width * (candidate[0] / plan[0]) ** 1.5

    def prior(self, candidate: tuple[int, int | None], pass_seconds: float) -> float:
        """The prior cost of ``candidate`` (examples, projection): ``PRIOR_PASSES (1 + w) (n / N)^1.5`` probe
        passes of ``pass_seconds``."""
        n, m = candidate
        return PRIOR_PASSES * pass_seconds * (1 + self._width(m)) * (n / self.probe_examples) ** 1.5

    def _candidates(self) -> list[tuple[int, int | None]]:
        return [(size, m) for size in self.sizes for m in self.projections]

    def _within(self, predict: Callable[[tuple[int, int | None]], float], target: float) -> tuple[int, int | None]:
        """The most exact candidate predicted within ``target``, else the cheapest."""
        candidates = self._candidates()
        return next((c for c in candidates if predict(c) <= target), candidates[-1])

    def first(self, pass_seconds: float | None = None) -> MeasurementPlan:
        """The plan to measure step 0 with first.

        Args:
            pass_seconds: What one forward and backward pass of the whole probe takes; ``None`` (not timed, as in
                a distributed job, where every rank must choose alike): at most :data:`FIRST_WIDTH` backward passes
                per example on the whole probe.
        """
        if self.max_overhead is None:
            reason = "max_overhead=None: nothing is reduced."
        elif not self.adaptive:
            reason = "The options given fix the measurement." if self.given else "There is nothing cheaper to choose."
        else:
            reason = "First try; revised once its cost is measured."
        if pass_seconds is not None and self.adaptive:
            size, m = self._within(lambda c: self.prior(c, pass_seconds), TARGET_PASSES * pass_seconds)
        else:
            fitting = [m for m in self.projections if self._width(m) <= FIRST_WIDTH]
            size, m = self.sizes[0], fitting[0] if fitting else self.projections[-1]
        return MeasurementPlan(size, self.probe_examples, self.outputs, m, pass_seconds, reasons=(reason,))

    def revise(self, plan: MeasurementPlan, seconds: float, pass_seconds: float) -> MeasurementPlan:
        """The plan to keep, from ``plan``'s measured cost: ``plan`` itself (with its cost) when it is the most exact
        candidate predicted within :data:`TARGET_PASSES` probe passes, else that candidate, else the cheapest.

        Args:
            plan: The plan the step-0 measurement was made with.
            seconds: What that measurement's kernel took.
            pass_seconds: What one forward and backward pass of the whole probe takes.
        """
        target = TARGET_PASSES * pass_seconds
        reasons = [
            f"One forward and backward pass of the probe takes {pass_seconds:.3g} s; a measurement is sized to about "
            f"{TARGET_PASSES:g} of them ({target:.3g} s) so that the {self.max_overhead:.0%} budget measures often."
        ]
        if self.outputs > EXACT_OUTPUTS and None not in self.projections:
            reasons.append(
                f"The model has {self.outputs} outputs per example: their exact kernel costs a backward pass each, so "
                "it is estimated from random output combinations (unbiased; its noise is reported)."
            )

        tried = (plan.examples, plan.output_projection)
        chosen = self._within(lambda c: self._predict(seconds, tried, c), target)
        if self._predict(seconds, tried, chosen) > target:
            reasons.append(
                f"Even the cheapest measurement (about {self._predict(seconds, tried, chosen):.3g} s) exceeds the "
                "target: the budget spaces measurements further."
            )
        elif chosen[0] < self.probe_examples:
            reasons.append(f"The whole probe is too slow even with the cheapest projection: {chosen[0]} examples.")
        size, m = chosen
        cost = seconds if chosen == tried else self._predict(seconds, tried, chosen)
        return MeasurementPlan(size, self.probe_examples, self.outputs, m, pass_seconds, cost, tuple(reasons))
