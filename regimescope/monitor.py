"""The regime monitor: schedules measurements, runs the stages (capture, indicators, verdict, alerts), writes."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from regimescope import budget
from regimescope.alerts import Alert, AlertDispatcher, AlertRule, AlertWatch, Observation, default_rules
from regimescope.budget import DEFAULT_MAX_OVERHEAD, OverheadBudget
from regimescope.capture import CaptureConfig, Snapshot, capture
from regimescope.capture.capture import measured_model
from regimescope.capture.layers import default_feature_layers, default_pattern_layers, resolve_layers
from regimescope.capture.needs import Need
from regimescope.capture.sizing import Auto, MeasurementPlan, Sizing, probe_pass, wall_seconds
from regimescope.conservation.learning_rates import group_learning_rates
from regimescope.distributed import from_main_process, is_main_process, world_size
from regimescope.fingerprint import fingerprint, mismatch
from regimescope.forecast import Forecast
from regimescope.guards import check_mode
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.indicators.suite import IndicatorSuite
from regimescope.knobs import Advice, advise, model_at_init
from regimescope.ntk import layer_names
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, parse_implementation
from regimescope.outputs import OutputFn
from regimescope.probe import Probe
from regimescope.record import Record
from regimescope.schedule import LogThenEvery, Schedule
from regimescope.sharded import ShardedReplica, check_sharding
from regimescope.sinks import Sink, SinkGroup, logdir_sinks
from regimescope.split_kernel import (
    DEFAULT_SHARING,
    KernelSharing,
    layer_assignment,
    parse_sharing,
    split_layer_kernels,
)
from regimescope.tags import ALERTS, COST_BUDGET_DEFERRED, COST_FRACTION, COST_NOTES, COST_SECONDS
from regimescope.unwrap import unwrap_model
from regimescope.verdict import RegimeJudge, Verdict, evidence_sources

logger = logging.getLogger(__name__)

STATE_VERSION = 2
"""Format version of :meth:`RegimeMonitor.state_dict`."""
DEFAULT_HISTORY = 1000
"""Measurements :attr:`RegimeMonitor.history` keeps in memory (the JSONL file keeps every one)."""


class RegimeMonitor:
    """Tells, while a model trains, whether it learns lazily (kernel regime) or richly (feature learning).

    At the steps the schedule picks, one capture measures on the fixed probe everything the indicators need (the
    per-layer NTK once), the indicators compare it with the step-0 and previous measurements, the verdict
    turns kernel movement into a richness score and a label, alert rules turn measurements into alerts, and
    everything goes to the sinks (TensorBoard and JSONL under ``logdir``). The monitor itself only schedules,
    runs these stages in order, writes and keeps their state; what is measured is declared by the indicators.

    Measuring never changes training: parameters, gradients, optimizer state, buffers, random state, mode flags
    and hooks are left as they were. An error inside a measurement (or the schedule, or a per-step observation)
    is reported once and measuring pauses; training goes on (unless ``strict=True``).

    In a distributed job every rank calls the monitor at the same steps (the optimizer hook does). Under DDP every
    rank holds the whole model; a model sharded with ``fully_shard`` (FSDP2) is measured through an unsharded replica
    that every rank gathers at each measurement (:mod:`regimescope.sharded`). ``distributed`` chooses who computes
    the kernel; rank 0 does the rest of the measurement, its results reach every rank, and only rank 0 writes.

    Args:
        model: The model being trained (DDP / DataParallel / ``torch.compile`` wrappers are unwrapped; FSDP2 models
            are measured through a replica, see above).
        probe: A :class:`Probe` on the model's device, or bare inputs (tensor, tuple or dict) to wrap in one.
        optimizer: The optimizer; :meth:`attach` then measures automatically after each ``optimizer.step()``,
            and its param groups' learning rates weight the conserved quantities. Parameters it starts training after
            :meth:`attach` (a param group added later) have no step-0 references: a ``parameters_added`` alert says
            so (:class:`~regimescope.alerts.ParametersAdded`).
        logdir: Folder for the TensorBoard event files and ``regimescope.jsonl``; ``None`` writes none.
        sinks: Extra sinks (e.g. ``MemorySink()``).
        every: Regular measurement interval in optimizer steps (step 0 and the powers of two below ``every`` are
            measured too).
        schedule: A ``step -> bool`` callable replacing the default schedule.
        indicators: Indicators replacing :func:`~regimescope.indicators.defaults.default_indicators`.
        on_alert: Callables receiving each :class:`~regimescope.alerts.Alert`.
        alert_rules: Alert rules replacing :func:`~regimescope.alerts.default_rules` (regime shift, kernel jump,
            conservation broken, non-finite values); add e.g. ``regimescope.alerts.Threshold(tag, above=...)``.
        stop_on: Alert kinds that set :attr:`stop_requested` (the framework adapters then stop training).
        strict: Raise errors from measurements instead of pausing.
        mode: Model behaviour during measurement: ``"probe_stats"`` (default: eval mode, BatchNorm layers
            normalising with the probe's own statistics held fixed, see :mod:`regimescope.capture.probe_statistics`),
            ``"batch_stats"`` (the same statistics differentiated through: the training Jacobian of the whole probe,
            one backward pass per example and output), ``"eval"`` (running statistics) or ``"train"``.
        dtype: Compute dtype of kernels and features (default ``None``: the parameters' dtype).
        output_fn: Maps the model's return value to the output tensor (default: tensor, ``"logits"``, first item).
        layers: Module names whose outputs are the monitored representations (default: the activation modules).
        implementation: NTK implementation (see :class:`~regimescope.ntk.Implementation`).
        max_memory: NTK byte budget.
        sketch: CountSketch each per-sample gradient block to this many dimensions (unbiased; for models too
            large for the exact kernel); see ``empirical_ntk``.
        heatmap_every: Log the kernel heatmap image every this many measurements.
        distributed: Who computes the per-layer kernel in a distributed job (see
            :class:`~regimescope.split_kernel.KernelSharing`): ``"rank0"`` (default) or ``"split_layers"`` (every
            rank computes a balanced share of the layer blocks and one all-reduce sums them: the same kernel,
            faster). Outside a distributed job both compute it in the one process.
        max_overhead: The largest overhead the monitor may add, its time as a fraction of the training's
            (:mod:`regimescope.budget`; 0.05: training at most 5 % slower than without the monitor): scheduled
            measurements that would exceed it are deferred (owed, not dropped) until training has earned them, so
            the interval stretches when measurements are expensive. ``None``: the fixed schedule, whatever it costs.
        output_projection: The kernel's outputs: ``"auto"`` (sized at :meth:`attach` to the budget, see
            :mod:`regimescope.capture.sizing`: exact for a few outputs, random combinations for many, like a language
            model's logits), ``None`` (every output, exact) or a number of seeded random output combinations.
        measured_examples: Probe examples measured: ``"auto"`` (the whole probe unless the budget needs fewer) or a
            number (the first that many examples of the probe).
        history_size: Measurements :attr:`history` keeps in memory (scalars and texts; images and histograms go
            to the sinks only). The JSONL file under ``logdir`` keeps every measurement.

    Attributes:
        model: The module measured: the unwrapped model, or the replica of an FSDP2 model.
        plan: What each measurement computes (probe examples, output projection, expected cost and why), chosen at
            :meth:`attach` and kept for the run (:class:`~regimescope.capture.sizing.MeasurementPlan`).
        attach_seconds: Wall time :meth:`attach` took (validation, sizing, the step-0 measurement and forecast).

    Raises:
        TypeError / ValueError: At construction, for arguments of the wrong type or value, with the fix.
    """

    def __init__(
        self,
        model: nn.Module,
        probe: Probe | torch.Tensor,
        optimizer: torch.optim.Optimizer | None = None,
        logdir: str | Path | None = None,
        sinks: Iterable[Sink] | None = None,
        every: int = 100,
        *,
        schedule: Schedule | None = None,
        indicators: Iterable[Indicator] | None = None,
        on_alert: Callable[[Alert], None] | Iterable[Callable[[Alert], None]] | None = None,
        alert_rules: Iterable[AlertRule] | None = None,
        stop_on: Iterable[str] = (),
        strict: bool = False,
        mode: str = "probe_stats",
        dtype: torch.dtype | None = None,
        output_fn: OutputFn | None = None,
        layers: list[str] | None = None,
        implementation: str = DEFAULT_IMPLEMENTATION.value,
        max_memory: int | None = None,
        sketch: int | None = None,
        heatmap_every: int = 10,
        distributed: str = DEFAULT_SHARING.value,
        max_overhead: float | None = DEFAULT_MAX_OVERHEAD,
        output_projection: int | None | Auto = "auto",
        measured_examples: int | Auto = "auto",
        history_size: int = DEFAULT_HISTORY,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module; received {type(model).__name__}.")
        if isinstance(probe, (torch.Tensor, tuple, list, Mapping)):
            probe = Probe(probe)
        if not isinstance(probe, Probe):
            raise TypeError(
                "`probe` must be a regimescope.Probe or model inputs (tensor, tuple or dict); received "
                f"{type(probe).__name__}. Build one with `rs.Probe(inputs, targets)` or `rs.Probe.from_loader(loader)`."
            )
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer; received {type(optimizer).__name__}.")
        check_mode(mode)
        if dtype not in (None, torch.float32, torch.float64):
            raise ValueError(f"`dtype` must be None (the parameters' dtype), torch.float32 or torch.float64; "
                             f"received {dtype}.")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"`schedule` must be a callable step -> bool; received {type(schedule).__name__}.")
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"`history_size` must be a positive number of measurements; received {history_size!r}.")
        self._sharing = parse_sharing(distributed)
        self._trained = unwrap_model(model)
        self._replica = ShardedReplica(self._trained) if check_sharding(self._trained) else None
        self.model = self._trained if self._replica is None else self._replica.module
        self._owners: dict[str, int] | None = None
        self.probe = probe
        self.optimizer = optimizer
        self.logdir = Path(logdir) if logdir is not None else None
        self.schedule = schedule if schedule is not None else LogThenEvery(every)
        self.strict = strict
        self._suite = IndicatorSuite(
            default_indicators(heatmap_every) if indicators is None else indicators, user_given=indicators is not None
        )
        callbacks = [on_alert] if callable(on_alert) else list(on_alert or [])
        self._alerts = AlertDispatcher(callbacks, stop_on=stop_on, strict=strict)
        self._watch = AlertWatch(default_rules() if alert_rules is None else alert_rules, strict=strict)
        self._judge = RegimeJudge({}, strict=strict)
        self._budget = OverheadBudget(max_overhead)
        self._requested = {"output_projection": output_projection, "measured_examples": measured_examples}
        self.plan: MeasurementPlan | None = None
        self._sizing: Sizing | None = None
        self.attach_seconds = 0.0
        self._told_deferral = False
        self._attach_step = 0
        self._next_observation = 1
        self._observation_stride = 1
        self._extra_sinks = list(sinks or [])
        self._sinks = SinkGroup()
        self.config = CaptureConfig(
            mode=mode,
            dtype=dtype,
            output_fn=output_fn,
            implementation=parse_implementation(implementation),
            max_memory=max_memory,
            sketch=sketch,
            feature_layers=list(layers) if layers is not None else default_feature_layers(self.model),
            pattern_layers=default_pattern_layers(self.model),
        )
        self._context = Context(
            model=self.model, probe=probe, optimizer=optimizer, trained=self._trained,
            gradients_readable=self._replica is None,
        )
        self._init: Snapshot | None = None
        self._previous: Snapshot | None = None
        self._loaded: dict[str, Any] | None = None
        self._history: deque[Record] = deque(maxlen=history_size)
        self._optimizer_steps = 0
        self._last_measured: int | None = None
        self._last_step = 0
        self._hook: Any = None
        self._attached = False
        self._closed = False
        self._paused = False

    # ----------------------------------------------------------------------------------------------- set-up
    def attach(self) -> RegimeMonitor:
        """Validate the model and probe, set up the stages and sinks, measure step 0, hook the optimizer.

        A state given to :meth:`load_state_dict` is checked against this model and probe and restored here.

        Returns:
            ``self``, so ``monitor = RegimeMonitor(...).attach()`` works.

        Raises:
            ValueError: When the model cannot be measured on this probe, or a loaded state belongs to another run
                (the message says how to fix it).
            RuntimeError: After :meth:`close`.
        """
        if self._closed:
            raise RuntimeError("This monitor is closed; build a new RegimeMonitor to monitor another run.")
        if self._attached:
            return self
        started = budget.now()
        if self._replica is not None:
            self._replica.refresh()
        self._validate_model()
        outputs = self.probe.check(self.model, self.config.output_fn, self.config.mode, self.config.dtype)
        resolve_layers(self.model, self.config.feature_layers, "layers")
        self._context.learning_rates = group_learning_rates(self._trained, self.optimizer)
        loaded, self._loaded = self._loaded, None
        init_kernels = {} if loaded is None or loaded["init"] is None else loaded["init"]["layer_kernels"]
        self.config.kernel_layers = tuple(init_kernels) if init_kernels else tuple(layer_names(self.model))
        if loaded is not None:
            plan = MeasurementPlan.from_state(loaded["plan"])
            if plan.examples > self.probe.size:  # the saved examples cannot be measured on this probe
                raise _foreign_state(
                    f"it was saved with a probe of {plan.examples} examples, this one has {self.probe.size}"
                )
        elif self.plan is None:
            self._sizing = Sizing(
                self.probe.size,
                outputs,
                max_overhead=self._budget.max_overhead,
                output_projection=self._requested["output_projection"],
                measured_examples=self._requested["measured_examples"],
            )
            plan = self._sizing.first(self._timed_probe_pass())
        else:
            plan = self.plan
        self._judge = RegimeJudge({}, strict=self.strict)
        self._use_plan(plan)
        self._suite.setup(self._context)
        self._judge.sources = evidence_sources(self._suite.indicators)
        if loaded is not None:
            self._restore(loaded)
        if is_main_process():
            self._sinks = SinkGroup([*self._extra_sinks, *logdir_sinks(self.logdir)], strict=self.strict)
            if self._init is not None:  # resumed (or attached again): later points of an earlier session are void
                self._sinks.resume(self._resume_step())
        if self.optimizer is not None:
            self._hook = self.optimizer.register_step_post_hook(self._after_optimizer_step)
        self._attached = True
        self._budget.start(started)  # attach() is the monitor's time too: the budget counts it
        self._budget.spend(budget.now() - started)
        self._attach_step = self._optimizer_steps
        self._next_observation = self._optimizer_steps + 1
        if self._init is None:
            self._safe_measure(0)
        self.attach_seconds = budget.now() - started
        return self

    def _use_plan(self, plan: MeasurementPlan) -> None:
        """Measure with ``plan`` from now on: its probe examples, its output projection."""
        self.plan = plan
        self._context.probe = self.probe.subset(plan.examples)
        self.config.output_projection = plan.output_projection
        self._judge.measurement = plan.describe() if plan.reduced else None

    def _timed_probe_pass(self) -> float | None:
        """The wall time of one forward and backward pass of the probe, which sizes the measurement; ``None`` when
        nothing is sized, or in a distributed job (every rank must choose the same plan, so the first is not timed
        and not revised).

        Timed on the fewest examples a measurement may use (``n`` of the probe's ``N``) and scaled by ``N / n``: a
        full pass took 0.3-0.7 % of a 300-step run on the models of ``benchmarks/overhead.py``, up to a seventh of the
        default budget, and a quarter of the probe takes about a quarter of that. The scaled time was 0.96-1.0 times
        a measured full pass on the causal transformer LM, 1.0-1.2 on the CNN, 1.3 on Hugging Face GPT-2 and 1.3-1.5
        on ResNet-18, whose small batches use the CPU less well.
        No pass warms the model up first: the first pass, measured 4-33% slower than later ones, sizes measurements
        that much larger, which costs less than a second pass."""
        if self._sizing is None or not self._sizing.adaptive or world_size() > 1:
            return None
        examples = self._sizing.sizes[-1]
        subset = self.probe.subset(examples)
        seconds = wall_seconds(lambda: probe_pass(self.model, subset, self.config), self.probe.device)
        return seconds * self.probe.size / examples

    def _resized(self, snapshot: Snapshot, seconds: float) -> tuple[Snapshot, float]:
        """Revise the first plan from what its step-0 capture cost (:class:`~regimescope.capture.sizing.Sizing`)
        and measure step 0 again when the plan changes (the model has not moved); log the plan kept.

        Returns:
            The snapshot of the plan kept, and the seconds of a first capture discarded (0 when none was).
        """
        tried = self.plan
        self._use_plan(self._sizing.revise(tried, seconds, tried.pass_seconds))
        logger.info("regimescope measures %s.", self.plan.describe())
        if (self.plan.examples, self.plan.output_projection) == (tried.examples, tried.output_projection):
            return snapshot, 0.0
        return capture(self.model, self._context.probe, self._suite.needs, self.config, snapshot.step), seconds

    def _validate_model(self) -> None:
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(
                "The model has no trainable parameters (none with requires_grad=True), so there is no training "
                "regime to monitor. Attach the monitor to the model being trained."
            )
        if self.optimizer is not None:
            ids = {id(p) for p in self._trained.parameters()}
            if not any(id(p) in ids for group in self.optimizer.param_groups for p in group["params"]):
                raise ValueError(
                    "None of the optimizer's parameters belongs to the model: pass the optimizer that trains this "
                    "model (or the model it optimises)."
                )


    # ------------------------------------------------------------------------------------------- measuring
    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer_steps += 1
        if self._paused:
            return
        if self._suite.observers and self._optimizer_steps >= self._next_observation:
            steps = self._observation_stride
            start = budget.now()
            try:
                self._suite.observe_step(optimizer, steps)
            except Exception as error:
                self._fail(self._optimizer_steps, "reading the optimizer step", error)
                return
            finally:
                seconds = budget.now() - start
                self._budget.spend(seconds)
            self._next_observation = self._optimizer_steps + steps
            per_step = self._seconds_per_step(self._optimizer_steps - self._attach_step)
            self._observation_stride = self._budget.observation_stride(seconds, per_step)
        self.step(self._optimizer_steps)

    def _seconds_per_step(self, steps: int) -> float:
        """Training wall time per step over the ``steps`` since ``attach()``, the monitor's own time left out."""
        return self._budget.training_seconds(budget.now()) / max(1, steps)

    def step(self, global_step: int | None = None) -> Verdict | None:
        """Measure if the schedule says so at ``global_step`` (default: the count of optimizer steps seen).

        Returns:
            The verdict when a measurement happened, else ``None`` (also after :meth:`close`).

        Raises:
            RuntimeError: Before :meth:`attach`.
        """
        if self._closed:
            return None
        if not self._attached:
            raise RuntimeError("Call `monitor.attach()` before `monitor.step()` (it validates and measures step 0).")
        step = self._optimizer_steps if global_step is None else int(global_step)
        self._last_step = step
        if self._paused or step == self._last_measured:
            return None
        try:
            due = bool(self.schedule(step))
        except Exception as error:
            self._fail(step, "the schedule", error)
            return None
        if due:
            self._budget.pending += 1
        if not self._budget.pending:
            return None
        if not from_main_process(lambda: self._budget.allows(budget.now())):  # one decision for all ranks
            if due:
                self._defer(step)
            return None
        self._budget.pending -= 1
        return self._safe_measure(step)

    def _defer(self, step: int) -> None:
        """Owe the measurement scheduled at ``step`` until the budget allows it; say once, with the interval the
        budget allows, why."""
        self._budget.deferred += 1
        if self._told_deferral or not is_main_process():
            return
        self._told_deferral = True
        interval = self._budget.steady_interval(self._seconds_per_step(step - self._attach_step))
        about = f" (at the current cost, about every {interval} steps)" if interval else ""
        note = (
            f"**step {step}** · the measurement scheduled now is deferred to keep the monitor within "
            f"{self._budget.max_overhead:.0%} of training time: one measurement costs "
            f"{self._budget.predicted_cost:.3g} s, so measurements happen when training has earned them{about}. "
            "Pass `max_overhead=None` for the fixed schedule, a larger overhead, or a cheaper measurement."
        )
        logger.info("regimescope: %s", note.replace("**", ""))
        deferred = {COST_BUDGET_DEFERRED: float(self._budget.deferred)}
        self._sinks.write(Record(step, scalars=deferred, texts={COST_NOTES: note}))

    def _safe_measure(self, step: int) -> Verdict | None:
        try:
            return self.measure(step)
        except Exception as error:
            self._fail(step, "measurement", error)
            return None

    def _fail(self, step: int, what: str, error: Exception) -> None:
        """Report a failure once (log with traceback, TensorBoard text) and pause measuring; raise when strict."""
        if self.strict:
            raise error
        self._paused = True
        logger.error(
            "regimescope: %s at step %d failed; measuring is paused, training goes on.", what, step, exc_info=error
        )
        note = f"**step {step}** · {what} failed ({type(error).__name__}: {error}); measuring paused."
        self._sinks.write(Record(step, texts={ALERTS: note}))

    def measure(self, step: int) -> Verdict | None:
        """Measure now, whatever the schedule says, and return the verdict (``None`` without kernel evidence).

        In a distributed job every rank calls it (:meth:`step` and the optimizer hook do): every rank first takes
        part in the collective steps (gathering an FSDP2 model's replica; with ``distributed="split_layers"`` its
        share of the kernel blocks and their all-reduce), then rank 0 measures, and its record, verdict and alerts
        reach every rank, so all ranks keep the same history and verdict, deliver the same alerts (``on_alert``
        callables run on every rank) and agree on :attr:`stop_requested`. Only rank 0 holds the step-0 references
        and writes.

        Raises:
            RuntimeError: Before :meth:`attach` or after :meth:`close`.
        """
        if self._closed or not self._attached:
            state = "closed" if self._closed else "not attached"
            raise RuntimeError(f"This monitor is {state}: `measure()` needs an attached monitor.")
        start = budget.now()
        with torch.inference_mode(False), torch.enable_grad():
            kernels = self._collective_part()
            shared = budget.now() - start
            record, verdict, alerts = from_main_process(lambda: self._measure_here(step, kernels, shared))
        if not is_main_process():
            if verdict is not None:
                self._judge.adopt(verdict)
            for alert in alerts:
                self._alerts.dispatch(alert)
        self._last_measured = step
        self._history.append(Record(record.step, scalars=dict(record.scalars), texts=dict(record.texts)))
        written = budget.now()
        self._sinks.write(record)
        self._budget.spend(budget.now() - written)  # writing the record is the monitor's time too
        return verdict

    def _collective_part(self) -> dict[str, torch.Tensor] | None:
        """The part of a measurement every rank takes part in, in the same order on every rank.

        Refreshes an FSDP2 model's replica; with ``distributed="split_layers"`` in a distributed job, computes this
        rank's share of the kernel blocks and all-reduces them (the assignment is made once, by rank 0).

        Returns:
            The whole per-layer kernel when the ranks shared it, else ``None`` (rank 0's capture computes it).
        """
        if self._replica is not None:
            self._replica.refresh()
        split = self._sharing is KernelSharing.SPLIT_LAYERS and world_size() > 1
        if not split or Need.KERNEL not in self._suite.needs:
            return None
        if self._owners is None:
            self._owners = layer_assignment(self.model, self._context.probe, self.config)
        return split_layer_kernels(self.model, self._context.probe, self.config, self._owners)

    def _measure_here(
        self, step: int, kernels: dict[str, torch.Tensor] | None = None, shared_seconds: float = 0.0
    ) -> tuple[Record, Verdict | None, list[Alert]]:
        """Capture, indicators, verdict and alert rules at ``step`` on this process (rank 0 in a distributed job).

        Args:
            step: The global step.
            kernels: The per-layer kernel the ranks computed together, or ``None`` to compute it here.
            shared_seconds: Time the collective part took (:meth:`_collective_part`), counted in the cost.
        """
        start = budget.now() - shared_seconds
        self._context.learning_rates = group_learning_rates(self._trained, self.optimizer)
        captured = budget.now()
        snapshot = capture(self.model, self._context.probe, self._suite.needs, self.config, step, kernels)
        first = self._init is None
        one_time = 0.0  # what later measurements will not repeat: the forecast, a capture re-sizing discarded
        if first and self.plan.pass_seconds is not None and self._sizing is not None:
            snapshot, one_time = self._resized(snapshot, budget.now() - captured)
        if first:
            self._init = self._suite.retained(snapshot, Reference.INIT)
            forecast_start = budget.now()
            self._judge.make_forecast(self._context, self.config, snapshot.layer_kernels)
            one_time += budget.now() - forecast_start
        references = {Reference.INIT: self._init, Reference.PREVIOUS: self._previous, Reference.NONE: None}
        record, usable = self._suite.compute(snapshot, references, self._context)
        if first:
            record.texts[COST_NOTES] = self.plan.markdown()
        verdict = self._judge.judge(record) if usable else None
        alerts = self._watch.evaluate(Observation.of(record.step, record.scalars, verdict))
        if alerts:
            record.texts[ALERTS] = "\n\n".join(alert.markdown() for alert in alerts)
        for alert in alerts:
            self._alerts.dispatch(alert)
        if usable:
            self._previous = self._suite.retained(snapshot, Reference.PREVIOUS)
        elapsed = budget.now() - start
        self._budget.spend(elapsed, measurement=True, one_time=one_time)
        record.scalars[COST_SECONDS] = elapsed
        record.scalars[COST_FRACTION] = self._budget.overhead(budget.now())
        record.scalars[COST_BUDGET_DEFERRED] = float(self._budget.deferred)
        return record, verdict, alerts

    # ----------------------------------------------------------------------------------------------- state
    @property
    def indicators(self) -> list[Indicator]:
        """The indicators (after :meth:`attach`, the ones that apply to this model)."""
        return list(self._suite.indicators)

    @property
    def overhead(self) -> float:
        """The monitor's overhead since ``attach()`` began, by its own clock: the seconds it spent (``attach()``,
        measurements and the writing of their records, per-step observations) over the training's wall time, the
        rest (``0.0`` before :meth:`attach`). The budget keeps it under ``max_overhead``; each record also carries it as
        ``regimescope/cost/fraction``."""
        return self._budget.overhead(budget.now())

    @property
    def regime(self) -> Verdict | None:
        """The latest verdict (label, score, step); ``None`` before the first kernel measurement."""
        return self._judge.verdict

    @property
    def forecast(self) -> Forecast | None:
        """The step-0 forecast (lazy / rich / delayed-rich and its reasons); ``None`` before :meth:`attach`, after a
        failure and on ranks other than 0 (a resumed run keeps the forecast made at initialisation)."""
        return self._judge.forecast

    def explain(self, advice: bool = False) -> str:
        """Which indicators drove the current label, as short markdown.

        Names the label and its meaning, each kernel evidence's value and which one drove the score, the
        indicators outside the score worth reading next to it (a changed representation next to a lazy kernel,
        theory.md 5.5; a layer that turned but carries little of the kernel; flipped activation patterns), and the
        step-0 forecast. The same text is written at every measurement as ``regimescope/regime/explanation``.

        Args:
            advice: Also say which knob would move the run across the lazy/rich boundary, and by how much
                (:meth:`advise`; it re-runs the forecast about ten times per knob, so it is computed only when asked).
        """
        return self._judge.explain(self.advise().text if advice else None)

    def advise(self) -> Advice:
        """Which knob (initialisation scale, output scale) would move this run across the lazy/rich boundary, and by
        about how much: :func:`regimescope.knobs.advise` on rescaled copies of the model at step 0, built from the
        step-0 weights the monitor keeps (never the live model). Its text says when the forecast cannot tell.

        Raises:
            RuntimeError: Before the step-0 measurement, or when no indicator kept the step-0 weights.
        """
        if self._init is None or not self._init.weights:
            raise RuntimeError(
                "No step-0 weights to advise from: attach the monitor first (its default indicators keep them)."
            )
        probe = self._context.probe
        return advise(
            measured_model(model_at_init(self.model, self._init.weights), probe, self.config),
            probe,
            self.regime,
            learning_rates=self._context.learning_rates,
            output_fn=self.config.output_fn,
            mode=self.config.engine_mode,
            dtype=self.config.dtype,
        )

    @property
    def history(self) -> list[Record]:
        """The last ``history_size`` records of this process, in order (scalars and texts; images and histograms
        go to the sinks). A resumed monitor's history starts at the resume; the JSONL file holds the whole run."""
        return list(self._history)

    @property
    def stop_requested(self) -> bool:
        """Whether an alert of a ``stop_on`` kind asked training to stop (adapters stop the trainer on it)."""
        return self._alerts.stop_requested

    @property
    def stop_reason(self) -> Alert | None:
        """The alert that asked training to stop, or ``None``."""
        return self._alerts.stop_reason

    @property
    def distributed(self) -> KernelSharing:
        """Who computes the per-layer kernel in a distributed job (the ``distributed`` argument)."""
        return self._sharing

    @property
    def paused(self) -> bool:
        """Whether measuring stopped after an error."""
        return self._paused

    def state_dict(self) -> dict[str, Any]:
        """The monitor's state for checkpoints, as tensors and plain containers (``torch.load(weights_only=True)``
        reads it): the step-0 and previous references, each stage's running state (indicators, verdict and
        forecast, alert rules), the step counters, and a fingerprint of this run (model layout, probe, weights
        now) that :meth:`attach` checks when the state is resumed. The history is not included (the JSONL file
        keeps it), so the state's size does not grow with the run.

        Before :meth:`attach`, a state given to :meth:`load_state_dict` is returned as it was given.
        """
        if self._loaded is not None:
            return dict(self._loaded)
        saved = fingerprint(self.model, self._context.probe)
        if self._replica is not None:
            del saved["weights"]  # a replica's weights are as fresh as the last measurement only
        return {
            "version": STATE_VERSION,
            "fingerprint": saved,
            "init": None if self._init is None else self._init.to_state(),
            "previous": None if self._previous is None else self._previous.to_state(),
            "optimizer_steps": self._optimizer_steps,
            "last_measured": self._last_measured,
            "indicators": self._suite.state_dict(),
            "judge": self._judge.state_dict(),
            "alert_rules": self._watch.state_dict(),
            "budget": self._budget.state_dict(),
            "plan": None if self.plan is None else self.plan.to_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output, so the run keeps comparing against its original initialisation.

        Call it before :meth:`attach` (after loading the model weights saved with it); :meth:`attach` checks that the
        state belongs to this run (same model layout, same probe, the weights it was saved with) and restores it.

        Raises:
            ValueError: For a state of another format version; on an attached monitor, for a state of another run.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"This monitor state has version {state.get('version')!r}; this regimescope reads version "
                f"{STATE_VERSION}. Resume with the regimescope version that wrote the checkpoint, or start the "
                "monitor afresh without `load_state_dict`."
            )
        if self._attached:
            self._restore(state)
            self._sinks.resume(self._resume_step())
        else:
            self._loaded = dict(state)

    def _restore(self, state: dict[str, Any]) -> None:
        """Check that ``state`` belongs to this run, then restore every stage from it (after set-up)."""
        saved = state["fingerprint"]
        problem = mismatch(saved, self.model, self._context.probe)
        if problem is not None:
            raise _foreign_state(problem)
        self._init = None if state["init"] is None else Snapshot.from_state(state["init"])
        self._previous = None if state["previous"] is None else Snapshot.from_state(state["previous"])
        self._optimizer_steps = int(state["optimizer_steps"])
        self._last_measured = state["last_measured"]
        self._suite.load_state_dict(state["indicators"])
        self._judge.load_state_dict(state["judge"])
        self._watch.load_state_dict(state["alert_rules"])
        self._budget.load_state_dict(state["budget"])

    def _resume_step(self) -> int:
        """The step the run goes on from: that of the checkpoint, or of the last measurement if later."""
        return max(self._optimizer_steps, self._last_measured or 0)

    # --------------------------------------------------------------------------------------------- closing
    def close(self, final: bool = True) -> None:
        """Take the measurement the budget deferred, if one is pending, then remove the optimizer hook and close the
        sinks. Safe to call twice; the monitor cannot measure again.

        Scheduled measurements that the overhead budget deferred have no later step to wait for once training ends:
        one is taken here, at the last step seen, when the budget allows it, or whatever it costs when nothing was
        measured since step 0 (so a run too short for its budget to allow more than step 0 still ends with a verdict
        for its last step; that one measurement may take it past its budget); the rest are dropped.

        Args:
            final: Take the pending measurement; ``False`` closes without measuring (a ``with`` block left by an
                exception, a failed fit).
        """
        if final and self._attached and not self._paused and self._budget.pending:
            self._budget.pending = 0
            if self._last_step != self._last_measured and self._closing_measurement_allowed():
                self._safe_measure(self._last_step)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        sinks, self._sinks = self._sinks, SinkGroup()
        self._attached = False
        self._closed = True
        closing = budget.now()
        try:
            sinks.close()  # every sink, whatever some raise; raises only when strict
        finally:
            self._budget.spend(budget.now() - closing)  # closing the sinks is the monitor's time too

    def _closing_measurement_allowed(self) -> bool:
        """Whether :meth:`close` may take an owed measurement: when the budget allows it, or when nothing was measured
        since ``attach()``'s step 0 (every run ends with a verdict on trained weights). One decision for all ranks."""
        if self._last_measured is None or self._last_measured <= self._attach_step:
            return True
        return from_main_process(lambda: self._budget.allows(budget.now()))

    def __enter__(self) -> RegimeMonitor:
        return self.attach()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(final=exc_type is None)


def _foreign_state(problem: str) -> ValueError:
    """The error refusing a monitor state of another run, ``problem`` saying how it differs, with the fix."""
    return ValueError(
        f"This monitor state cannot be resumed here: {problem}. Load the model weights saved with it (the same "
        "checkpoint) before `attach()`, with the same probe; or start the monitor afresh without `load_state_dict` "
        "(its step-0 references are then the model as it is now)."
    )
