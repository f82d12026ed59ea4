"""Hugging Face adapter: ``Trainer(callbacks=[RegimeTrainerCallback()])`` monitors the regime of a Trainer run."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
    from transformers.trainer_callback import ExportableState
except ImportError as error:
    raise ImportError(
        f"regimescope.integrations.transformers needs Hugging Face `transformers`, which could not be imported "
        f"({error}). Install it with `pip install 'regimescope[transformers]'`."
    ) from error

from regimescope.integrations.options import KERNEL_OPTION_NAMES, adapter_arguments, kernel_options
from regimescope.integrations.probe_source import model_device, resolve_probe
from regimescope.integrations.state_codec import decode_state, encode_state
from torch import nn

from regimescope.monitor import RegimeMonitor
from regimescope.probe import Probe
from regimescope.unwrap import unwrap_model

logger = logging.getLogger(__name__)

STATE_ATTRIBUTE = "regimescope_state"
"""Key of the encoded monitor state in the callback's entry of ``TrainerState.stateful_callbacks``."""

_SUPPLIED = ("model", "probe", "optimizer", "logdir", "every", "stop_on")


def logging_dir(args: TrainingArguments) -> Path:
    """The Trainer's logging folder: ``args.logging_dir`` (transformers < 5), else ``$TENSORBOARD_LOGGING_DIR``
    (what transformers 5's TensorBoard callback reads), else ``args.output_dir``."""
    folder = getattr(args, "logging_dir", None) or os.environ.get("TENSORBOARD_LOGGING_DIR") or args.output_dir
    return Path(folder).expanduser()


def shifts_labels(model: nn.Module) -> bool:
    """Whether ``model`` is a Hugging Face causal language model, which predicts ``labels[:, t + 1]`` at position
    ``t`` (it shifts the labels inside): a class that ``transformers`` maps as a causal LM, or one named
    ``...ForCausalLM``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    name = type(unwrap_model(model)).__name__
    return name.endswith("ForCausalLM") or name in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())


class RegimeTrainerCallback(TrainerCallback, ExportableState):
    """Measures the training regime of a Hugging Face ``Trainer`` run.

    * At ``on_train_begin`` it builds the monitor on the Trainer's model. The probe is ``probe_size`` examples of
      the train dataset, drawn with a seeded generator (the same on every rank and on resume) and collated by the
      Trainer's data collator, so the model gets dict inputs exactly as in training; ``labels`` become the
      probe's targets. For a causal language model (a class Hugging Face lists as one, e.g. ``GPT2LMHeadModel``),
      which shifts its ``labels`` inside, the targets are shifted the same way (:meth:`regimescope.Probe.next_token`):
      the target of position ``t`` is the label at ``t + 1``. The model's outputs are reduced to their ``logits``
      (pass ``output_fn=`` otherwise); for a language model, whose logits have positions times vocabulary entries,
      pass ``output_projection=`` (e.g. 8) to measure the kernel of that many random combinations of them.
    * It measures after each optimizer step (``on_step_end``, on ``state.global_step``; gradient accumulation
      sub-steps are not measured) and writes, on the main process only, to ``<logging_dir>/regimescope``.
    * Its state travels in the Trainer's callback state (``stateful_callbacks`` of ``trainer_state.json``):
      ``trainer.train(resume_from_checkpoint=...)`` compares against the original step-0 references. The state
      holds the step-0 weights, so it is about 4/3 of the trainable parameters' float32 size, as base64 text.
    * ``stop_on`` sets ``control.should_training_stop``; every rank sees the same verdict and alerts.

    Resuming works whether or not ``TrainingArguments(restore_callback_states_from_checkpoint=True)`` is set. With
    it, the Trainer replaces this callback by one rebuilt from its JSON arguments (``every``, ``stop_on``,
    ``logdir``, ``probe_size``, ``probe_seed`` and the kernel options ``mode``, ``implementation``,
    ``output_projection``, ``sketch``, so a resumed run measures the same kernel); a ``probe`` or other monitor
    options given as objects are then lost, so leave that flag off when passing them.

    Args:
        probe: A :class:`regimescope.Probe` or a dict batch of model inputs; by default drawn from the train data.
        every: Measure at step 0, at the powers of two below ``every``, then every ``every`` optimizer steps.
        stop_on: A regime label (``"lazy"``, ``"transitional"``, ``"rich"``) or alert kind (``"regime_shift"``,
            ``"non_finite"``, ...), or several, that stops training.
        logdir: Write here instead of ``<logging_dir>/regimescope``.
        probe_size: Examples drawn from the train dataset when ``probe`` is not given.
        probe_seed: Seed of that draw.
        **options: Other :class:`regimescope.RegimeMonitor` arguments: the kernel options ``implementation``
            (default ``"auto"``: the layer rules for the linear, embedding and norm layers, and Jacobian rows
            example by example for the rest, e.g. BERT's position embeddings, since the attention-mask code
            branches on tensor values and cannot run under ``vmap``; ``"full_batch"`` differentiates the whole
            batch at once: as fast for a 64-example probe on a tiny BERT, ten times slower at 256),
            ``output_projection``, ``sketch`` and ``mode``, and ``indicators``, ``alert_rules``, ``on_alert``,
            ``dtype``, ``output_fn``, ``layers``, ``sinks``, ``distributed="split_layers"`` to share the kernel's
            layer blocks among the ranks, ...

    Attributes:
        monitor: The :class:`regimescope.RegimeMonitor` of the current (or last) run, ``None`` before training.
        logdir: The folder it writes to, once training has begun.

    Raises:
        TypeError: For an option ``RegimeMonitor`` does not take (or that the callback supplies itself).
        ValueError: For an unknown ``stop_on`` name.
    """

    def __init__(
        self,
        probe: Probe | Any | None = None,
        *,
        every: int = 100,
        stop_on: str | Iterable[str] | None = None,
        logdir: str | Path | None = None,
        probe_size: int = 64,
        probe_seed: int = 0,
        **options: Any,
    ) -> None:
        options, self._stop, self._probe = adapter_arguments(type(self).__name__, options, _SUPPLIED, probe, stop_on)
        self._options = {name: value for name, value in options.items() if name not in KERNEL_OPTION_NAMES}
        self._arguments = {
            "every": every,
            "stop_on": stop_on if stop_on is None or isinstance(stop_on, str) else list(stop_on),
            "logdir": None if logdir is None else str(logdir),
            "probe_size": probe_size,
            "probe_seed": probe_seed,
            **kernel_options(options),
        }
        self.monitor: RegimeMonitor | None = None
        self.logdir: Path | None = None

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module,
        train_dataloader: Any,
        **kwargs: Any,
    ) -> None:
        """Build the monitor on the Trainer's model, restore a resumed state, measure step 0."""
        arguments = self._arguments
        probe = resolve_probe(
            self._probe,
            train_dataloader,
            size=arguments["probe_size"],
            seed=arguments["probe_seed"],
            device=model_device(model),
        )
        if self._probe is None and probe.targets is not None and shifts_labels(model):
            probe = Probe.next_token(probe.inputs, probe.targets)
        self.logdir = Path(arguments["logdir"]) if arguments["logdir"] else logging_dir(args) / "regimescope"
        self.monitor = RegimeMonitor(
            model,
            probe,
            logdir=self.logdir,
            every=arguments["every"],
            stop_on=self._stop.alert_kinds,
            **{name: arguments[name] for name in KERNEL_OPTION_NAMES},
            **self._options,
        )
        saved = self._saved_state(state)
        if saved is not None:
            self.monitor.load_state_dict(decode_state(saved))
        self.monitor.attach()
        logger.info("regimescope: measuring this run; logs in %s", self.logdir)

    def _saved_state(self, state: TrainerState) -> str | None:
        """The encoded monitor state this callback left in a resumed ``TrainerState`` (``None`` on a fresh run)."""
        entry = state.stateful_callbacks.get(type(self).__name__)
        if isinstance(entry, list):
            entry = entry[0] if entry else None
        return None if entry is None else entry.get("attributes", {}).get(STATE_ATTRIBUTE)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Measure at ``state.global_step`` if the schedule says so; ask the Trainer to stop when ``stop_on`` is met."""
        self.monitor.step(state.global_step)
        if self._stop.reached(self.monitor):
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Close the monitor's writers (the monitor keeps its verdict and history)."""
        self.monitor.close()

    def state(self) -> dict[str, Any]:
        """The callback's entry in ``trainer_state.json``: its JSON arguments and the encoded monitor state."""
        encoded = None if self.monitor is None else encode_state(self.monitor.state_dict())
        return {"args": dict(self._arguments), "attributes": {STATE_ATTRIBUTE: encoded}}
