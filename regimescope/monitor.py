"""The regime monitor: measures on a schedule, turns measurements into a verdict, alerts and sink writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from regimescope.alerts import (
    Alert,
    AlertDispatcher,
    AlertRule,
    AlertWatch,
    ExplainedDrift,
    Observation,
    ProbeHalfNoise,
    default_rules,
    noise_tag,
    non_finite_values,
)
from regimescope.capture import CaptureConfig, Need, Snapshot, capture, merged_needs
from regimescope.capture.layers import default_feature_layers, default_pattern_layers, resolve_layers
from regimescope.conservation import DriftDiagnoser, diagnosis_markdown
from regimescope.conservation.learning_rates import group_learning_rates
from regimescope.distributed import from_main_process, is_main_process, world_size
from regimescope.forecast import Forecast, forecast_regime
from regimescope.indicators.balance import BalanceIndicator, diagnosed_pairs
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.indicators.defaults import default_indicators
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, parse_implementation
from regimescope.outputs import OutputFn
from regimescope.probe import Probe
from regimescope.record import TAG_ROOT, Record, tag
from regimescope.schedule import LogThenEvery, Schedule
from regimescope.sharded import ShardedReplica, check_sharding
from regimescope.sinks import JsonlSink, Sink, TensorBoardSink
from regimescope.split_kernel import (
    DEFAULT_SHARING,
    KernelSharing,
    layer_assignment,
    parse_sharing,
    split_layer_kernels,
)
from regimescope.unwrap import unwrap_model
from regimescope.verdict import EXPLANATION_TAG, Verdict, explain, next_label, richness_evidence, richness_score

logger = logging.getLogger(__name__)

ALERTS_TAG = f"{TAG_ROOT}/alerts"
DIAGNOSIS_TAG = tag("conservation", "diagnosis")
FORECAST_TAG = tag("regime", "forecast")
STATE_VERSION = 1

_SNAPSHOT_FIELDS = {
    Need.WEIGHTS: "weights",
    Need.OUTPUTS: "outputs",
    Need.FEATURES: "features",
    Need.ACTIVATION_PATTERNS: "activation_patterns",
    Need.KERNEL: "layer_kernels",
}


def _retained(snapshot: Snapshot, needs: set[Need]) -> Snapshot:
    """A copy of ``snapshot`` holding only the fields named by ``needs`` (what later comparisons read)."""
    kept = Snapshot(step=snapshot.step)
    for need in needs:
        setattr(kept, _SNAPSHOT_FIELDS[need], getattr(snapshot, _SNAPSHOT_FIELDS[need]))
    return kept


class RegimeMonitor:
    """Tells, while a model trains, whether it learns lazily (kernel regime) or richly (feature learning).

    At the steps the schedule picks, one capture measures on the fixed probe everything the indicators need (the
    per-layer NTK once), the indicators compare it with the step-0 and previous measurements, the verdict
    turns kernel movement into a richness score and a label, label changes become alerts, and everything goes
    to the sinks (TensorBoard and JSONL under ``logdir``).

    Measuring never changes training: parameters, gradients, optimizer state, buffers, random state, mode flags
    and hooks are left as they were. An error inside a measurement is reported once and measuring pauses;
    training goes on (unless ``strict=True``).

    In a distributed job every rank calls the monitor at the same steps (the optimizer hook does). Under DDP every
    rank holds the whole model; a model sharded with ``fully_shard`` (FSDP2) is measured through an unsharded replica
    that every rank gathers at each measurement (:mod:`regimescope.sharded`). ``distributed`` chooses who computes
    the kernel; rank 0 does the rest of the measurement, its results reach every rank, and only rank 0 writes.

    Args:
        model: The model being trained (DDP / DataParallel / ``torch.compile`` wrappers are unwrapped; FSDP2 models
            are measured through a replica, see above).
        probe: A :class:`Probe` on the model's device, or bare inputs (tensor, tuple or dict) to wrap in one.
        optimizer: The optimizer; :meth:`attach` then measures automatically after each ``optimizer.step()``,
            and its param groups' learning rates weight the conserved quantities.
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
        mode: Model behaviour during measurement: ``"eval"`` (default) or ``"train"`` (see ``empirical_ntk``).
        dtype: Compute dtype of kernels and features (default ``None``: the parameters' dtype).
        output_fn: Maps the model's return value to the output tensor (default: tensor, ``"logits"``, first item).
        layers: Module names whose outputs are the monitored representations (default: the activation modules).
        implementation: NTK implementation (see :class:`~regimescope.ntk.Implementation`).
        max_memory: NTK byte budget.
        heatmap_every: Log the kernel heatmap image every this many measurements.
        distributed: Who computes the per-layer kernel in a distributed job (see
            :class:`~regimescope.split_kernel.KernelSharing`): ``"rank0"`` (default) or ``"split_layers"`` (every
            rank computes a balanced share of the layer blocks and one all-reduce sums them: the same kernel,
            faster). Outside a distributed job both compute it in the one process.

    Attributes:
        model: The module measured: the unwrapped model, or the replica of an FSDP2 model.

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
        mode: str = "eval",
        dtype: torch.dtype | None = None,
        output_fn: OutputFn | None = None,
        layers: list[str] | None = None,
        implementation: str = DEFAULT_IMPLEMENTATION.value,
        max_memory: int | None = None,
        heatmap_every: int = 10,
        distributed: str = DEFAULT_SHARING.value,
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
        if mode not in ("eval", "train"):
            raise ValueError(f"`mode` must be 'eval' or 'train'; received {mode!r}.")
        if dtype not in (None, torch.float32, torch.float64):
            raise ValueError(f"`dtype` must be None (the parameters' dtype), torch.float32 or torch.float64; "
                             f"received {dtype}.")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"`schedule` must be a callable step -> bool; received {type(schedule).__name__}.")
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
        self.indicators = list(indicators) if indicators is not None else default_indicators(heatmap_every)
        self._user_indicators = indicators is not None
        callbacks = [on_alert] if callable(on_alert) else list(on_alert or [])
        self._alerts = AlertDispatcher(callbacks, stop_on=stop_on)
        self._watch = AlertWatch(default_rules() if alert_rules is None else alert_rules, strict=strict)
        self._noise = ProbeHalfNoise()
        self._explained = ExplainedDrift(())
        self._diagnoser = DriftDiagnoser()
        self._explained_state: dict[str, Any] | None = None
        self._extra_sinks = list(sinks or [])
        self._sinks: list[Sink] = []
        self.config = CaptureConfig(
            mode=mode,
            dtype=dtype,
            output_fn=output_fn,
            implementation=parse_implementation(implementation),
            max_memory=max_memory,
            feature_layers=list(layers) if layers is not None else default_feature_layers(self.model),
            pattern_layers=default_pattern_layers(self.model),
        )
        self._context = Context(model=self.model, probe=probe)
        self._init: Snapshot | None = None
        self._previous: Snapshot | None = None
        self._verdict: Verdict | None = None
        self._forecast: Forecast | None = None
        self._history: list[Record] = []
        self._optimizer_steps = 0
        self._last_measured: int | None = None
        self._hook: Any = None
        self._attached = False
        self._paused = False
        self._time_measuring = 0.0
        self._started = time.perf_counter()

    # ----------------------------------------------------------------------------------------------- set-up
    def attach(self) -> RegimeMonitor:
        """Validate the model and probe, set up indicators and sinks, measure step 0, hook the optimizer.

        Returns:
            ``self``, so ``monitor = RegimeMonitor(...).attach()`` works.

        Raises:
            ValueError: When the model cannot be measured on this probe (the message says how to fix it).
        """
        if self._attached:
            return self
        if self._replica is not None:
            self._replica.refresh()
        self._validate_model()
        self.probe.check(self.model, self.config.output_fn)
        resolve_layers(self.model, self.config.feature_layers, "layers")
        self._setup_indicators()
        self._needs = merged_needs(self.indicators)
        self._diagnoser = DriftDiagnoser(diagnosed_pairs(self._context))
        steps_readable = self.optimizer is not None and self._replica is None  # FSDP2: each rank has a gradient shard
        tracked = self._context.extras.get(BalanceIndicator.name, ()) if steps_readable else ()
        self._explained = ExplainedDrift([(item.pair, item.rates) for item in tracked])
        self._explained.start(self.model)
        if self._explained_state is not None:
            self._explained.load_state_dict(self._explained_state)
        if is_main_process():
            self._sinks = self._make_sinks()
        if self.optimizer is not None:
            self._hook = self.optimizer.register_step_post_hook(self._after_optimizer_step)
        self._attached = True
        self._started = time.perf_counter()
        if self._init is None:
            self._make_forecast()
            self._safe_measure(0)
        return self

    def _make_forecast(self) -> None:
        """Forecast the regime from the initialisation (rank 0) and log it; the first verdict's record carries it."""
        if not is_main_process():
            return
        try:
            self._forecast = forecast_regime(
                self.model,
                self.probe,
                learning_rates=group_learning_rates(self._trained, self.optimizer),
                output_fn=self.config.output_fn,
                mode=self.config.mode,
                dtype=self.config.dtype,
            )
        except Exception:
            if self.strict:
                raise
            logger.exception("regimescope: the step-0 forecast failed; monitoring goes on without it.")
            return
        logger.info("regimescope %s", self._forecast.markdown())

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

    def _setup_indicators(self) -> None:
        self._context.learning_rates = group_learning_rates(self._trained, self.optimizer)
        active = []
        for indicator in self.indicators:
            try:
                indicator.setup(self._context)
            except ValueError as error:
                if self._user_indicators:
                    raise
                logger.warning("regimescope: indicator %r is off for this model: %s", indicator.name, error)
                continue
            if indicator.applicable(self._context):
                active.append(indicator)
        self.indicators = active
        self._retain = {
            reference: merged_needs(i for i in active if i.reference == reference)
            for reference in (Reference.INIT, Reference.PREVIOUS)
        }

    def _make_sinks(self) -> list[Sink]:
        sinks = list(self._extra_sinks)
        if self.logdir is not None:
            sinks.append(TensorBoardSink(self.logdir))
            sinks.append(JsonlSink(self.logdir / "regimescope.jsonl"))
        return sinks

    # ------------------------------------------------------------------------------------------- measuring
    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer_steps += 1
        self._explained.observe(optimizer)
        self.step(self._optimizer_steps)

    def step(self, global_step: int | None = None) -> Verdict | None:
        """Measure if the schedule says so at ``global_step`` (default: the count of optimizer steps seen).

        Returns:
            The verdict when a measurement happened, else ``None``.
        """
        if not self._attached:
            raise RuntimeError("Call `monitor.attach()` before `monitor.step()` (it validates and measures step 0).")
        step = self._optimizer_steps if global_step is None else int(global_step)
        if self._paused or step == self._last_measured or not self.schedule(step):
            return None
        return self._safe_measure(step)

    def _safe_measure(self, step: int) -> Verdict | None:
        try:
            return self.measure(step)
        except Exception as error:
            if self.strict:
                raise
            self._paused = True
            logger.exception("regimescope: measurement at step %d failed; measuring is paused, training goes on.", step)
            failure = f"measurement failed ({type(error).__name__}: {error}); measuring paused."
            note = Record(step, texts={ALERTS_TAG: f"**step {step}** · {failure}"})
            self._write(note)
            return None

    def measure(self, step: int) -> Verdict | None:
        """Measure now, whatever the schedule says, and return the verdict (``None`` without kernel evidence).

        In a distributed job every rank calls it (:meth:`step` and the optimizer hook do): every rank first takes
        part in the collective steps (gathering an FSDP2 model's replica; with ``distributed="split_layers"`` its
        share of the kernel blocks and their all-reduce), then rank 0 measures, and its record, verdict and alerts
        reach every rank, so all ranks keep the same history and verdict, deliver the same alerts (``on_alert``
        callables run on every rank) and agree on :attr:`stop_requested`. Only rank 0 holds the step-0 references
        and writes.
        """
        start = time.perf_counter()
        kernels = self._collective_part()
        shared = time.perf_counter() - start
        record, verdict, alerts = from_main_process(lambda: self._measure_here(step, kernels, shared))
        if not is_main_process():
            if verdict is not None:
                self._verdict = verdict
            for alert in alerts:
                self._alerts.dispatch(alert)
        self._last_measured = step
        self._history.append(record)
        self._write(record)
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
        if not split or Need.KERNEL not in self._needs:
            return None
        if self._owners is None:
            self._owners = layer_assignment(self.model, self.probe, self.config)
        return split_layer_kernels(self.model, self.probe, self.config, self._owners)

    def _measure_here(
        self, step: int, kernels: dict[str, torch.Tensor] | None = None, shared_seconds: float = 0.0
    ) -> tuple[Record, Verdict | None, list[Alert]]:
        """Capture, indicators, verdict and alert rules at ``step`` on this process (rank 0 in a distributed job).

        Args:
            step: The global step.
            kernels: The per-layer kernel the ranks computed together, or ``None`` to compute it here.
            shared_seconds: Time the collective part took (:meth:`_collective_part`), counted in the cost.
        """
        start = time.perf_counter() - shared_seconds
        self._context.learning_rates = group_learning_rates(self._trained, self.optimizer)
        snapshot = capture(self.model, self.probe, self._needs, self.config, step, kernels)
        if self._init is None:
            self._init = _retained(snapshot, self._retain[Reference.INIT])
        references = {Reference.INIT: self._init, Reference.PREVIOUS: self._previous, Reference.NONE: None}
        record = Record(step, scalars=non_finite_values(snapshot))
        finite = not record.scalars  # a diverged model: report what is not finite, skip indicators and verdict
        for indicator in self.indicators if finite else ():
            record.merge(indicator.compute(snapshot, references[indicator.reference], self._context))
        verdict = self._judge(record)
        alerts = self._alert(record, snapshot, verdict)
        if finite and step > 0:
            self._diagnose(record, snapshot)
        if finite:
            self._previous = _retained(snapshot, self._retain[Reference.PREVIOUS])
        elapsed = time.perf_counter() - start
        self._time_measuring += elapsed
        wall = max(time.perf_counter() - self._started, elapsed)
        record.scalars[tag("cost", "seconds")] = elapsed
        record.scalars[tag("cost", "fraction")] = self._time_measuring / wall
        return record, verdict, alerts

    def _diagnose(self, record: Record, snapshot: Snapshot) -> None:
        """Name what moved each pair's balance since step 0, as text under ``regimescope/conservation/diagnosis``."""
        prefix = tag("balance_explained", "")
        explained = {name[len(prefix):]: v for name, v in record.scalars.items() if name.startswith(prefix)}
        found = self._diagnoser.diagnose(
            self._init.weights, snapshot.weights, steps=record.step, optimizer=self.optimizer, model=self._trained,
            explained=explained,
        )
        if found:
            record.texts[DIAGNOSIS_TAG] = diagnosis_markdown(found, record.step)

    def _judge(self, record: Record) -> Verdict | None:
        score = richness_score(record.scalars)
        if score is None:
            return None
        previous = self._verdict
        label = next_label(previous.label if previous else None, score)
        verdict = Verdict(step=record.step, score=score, label=label, evidence=richness_evidence(record.scalars))
        record.scalars[tag("regime", "score")] = score
        record.scalars[tag("regime", "label")] = float(verdict.label_index)
        record.texts[EXPLANATION_TAG] = explain(verdict, record.scalars, self._forecast_line())
        if previous is None and self._forecast is not None:
            record.texts[FORECAST_TAG] = self._forecast.markdown()
        self._verdict = verdict
        return verdict

    def _forecast_line(self) -> str | None:
        if self._forecast is None or self._forecast.label is None:
            return None
        return f"Forecast at step 0: {self._forecast.label} ({self._forecast.reasons[0]})"

    def _alert(self, record: Record, snapshot: Snapshot, verdict: Verdict | None) -> list[Alert]:
        """Add noise estimates and explained drifts to ``record``, run the alert rules, deliver and return the alerts."""
        noise = self._noise.estimate(snapshot, self._init, self._previous)
        noise.update(self._explained.noise(snapshot.weights))
        record.scalars.update(self._explained.scalars())
        record.scalars.update({noise_tag(name): value for name, value in noise.items()})
        alerts = self._watch.evaluate(Observation(record.step, dict(record.scalars), noise, verdict))
        if alerts:
            record.texts[ALERTS_TAG] = "\n\n".join(alert.markdown() for alert in alerts)
        for alert in alerts:
            self._alerts.dispatch(alert)
        return alerts

    def _write(self, record: Record) -> None:
        for sink in self._sinks:
            try:
                sink.write(record)
            except Exception:
                if self.strict:
                    raise
                logger.exception("regimescope: sink %s failed to write step %d.", type(sink).__name__, record.step)

    # ----------------------------------------------------------------------------------------------- state
    @property
    def regime(self) -> Verdict | None:
        """The latest verdict (label, score, step); ``None`` before the first kernel measurement."""
        return self._verdict

    @property
    def forecast(self) -> Forecast | None:
        """The step-0 forecast (lazy / rich / delayed-rich and its reasons); ``None`` before :meth:`attach`, after a
        failure, on ranks other than 0, and in a run resumed from a checkpoint (it is made at initialisation)."""
        return self._forecast

    def explain(self) -> str:
        """Which indicators drove the current label, as short markdown.

        Names the label and its meaning, each kernel evidence's value and which one drove the score, the
        indicators outside the score worth reading next to it (a changed representation next to a lazy kernel,
        theory.md 5.5; a layer that turned but carries little of the kernel; flipped activation patterns), and the
        step-0 forecast. The same text is written at every measurement as ``regimescope/regime/explanation``.
        """
        scalars = next((r.scalars for r in reversed(self._history) if tag("regime", "score") in r.scalars), {})
        return explain(self._verdict, scalars, self._forecast_line())

    @property
    def history(self) -> list[Record]:
        """Every record of this run, in order (images included for this process's measurements)."""
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
        """The monitor's state for checkpoints: step-0 references, previous measurement, verdict, history, the alert
        rules' and noise estimates' running state and the step-0 forecast (plain containers and tensors)."""
        return {
            "version": STATE_VERSION,
            "init": None if self._init is None else self._init.to_state(),
            "previous": None if self._previous is None else self._previous.to_state(),
            "verdict": None if self._verdict is None else asdict(self._verdict),
            "history": [record.to_json() for record in self._history],
            "optimizer_steps": self._optimizer_steps,
            "last_measured": self._last_measured,
            "explained_drift": self._explained.state_dict(),
            "alert_rules": self._watch.state_dict(),
            "noise": self._noise.state_dict(),
            "forecast": None if self._forecast is None else self._forecast.to_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output, so a resumed run compares against the original initialisation.

        Raises:
            ValueError: For a state of another format version.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"This monitor state has version {state.get('version')!r}; this regimescope reads version "
                f"{STATE_VERSION}. Resume with the regimescope version that wrote the checkpoint."
            )
        self._init = None if state["init"] is None else Snapshot.from_state(state["init"])
        self._previous = None if state["previous"] is None else Snapshot.from_state(state["previous"])
        self._verdict = None if state["verdict"] is None else Verdict(**state["verdict"])
        self._history = [Record.from_json(r) for r in state["history"]]
        self._optimizer_steps = int(state["optimizer_steps"])
        self._last_measured = state["last_measured"]
        self._explained_state = state.get("explained_drift")
        if state.get("alert_rules") is not None:
            self._watch.load_state_dict(state["alert_rules"])
        self._noise.load_state_dict(state.get("noise", {}))
        if state.get("forecast") is not None:
            self._forecast = Forecast.from_state(state["forecast"])

    # --------------------------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Remove the optimizer hook and close the sinks. Safe to call twice."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        for sink in self._sinks:
            sink.close()
        self._sinks = []
        self._attached = False

    def __enter__(self) -> RegimeMonitor:
        return self.attach()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
