"""Lightning adapter: ``Trainer(callbacks=[RegimeCallback()])`` monitors the regime of a ``lightning.pytorch`` run."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch import LightningModule, Trainer
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
except ImportError as error:
    raise ImportError(
        f"regimescope.integrations.lightning needs Lightning (`lightning.pytorch`), which could not be imported "
        f"({error}). Install it with `pip install 'regimescope[lightning]'`."
    ) from error

from regimescope.integrations.options import adapter_arguments, kernel_options
from regimescope.integrations.probe_source import model_device, resolve_probe

from regimescope.monitor import RegimeMonitor
from regimescope.probe import Probe

logger = logging.getLogger(__name__)

_SHARDED_STRATEGIES = (FSDPStrategy, ModelParallelStrategy)
_SUPPLIED = ("model", "probe", "optimizer", "logdir", "every", "stop_on")


class RegimeCallback(Callback):
    """Measures the training regime of a Lightning run and writes it next to the run's own logs.

    * ``setup`` (stage ``"fit"``) validates: the strategy must keep a whole model on every rank (DDP, single
      device; not Lightning's FSDP or model-parallel strategies), a given probe must run through the module, and
      the log folder is resolved. The monitor itself is built in ``on_train_start``: only then is the module on
      its device, restored from the checkpoint, and the training DataLoader (the probe's source) ready.
    * It measures on ``trainer.global_step``, which moves once per optimizer step, so under gradient accumulation
      each step is measured once; sanity checking and validation are never measured.
    * It writes only on global rank zero, into the folder of the run's ``TensorBoardLogger`` (the regimescope
      panels sit beside the run's own curves), or into ``<trainer.log_dir>/regimescope`` without one.
    * Its state (the step-0 references, the verdict, the history) goes into Lightning checkpoints, so
      ``trainer.fit(model, ckpt_path=...)`` compares against the original initialisation, not the checkpoint.
    * ``stop_on`` sets ``trainer.should_stop``; every rank sees the same verdict and alerts, so all ranks agree.

    Args:
        probe: A :class:`regimescope.Probe` or a batch of model inputs; by default ``probe_size`` examples drawn
            (seeded) from the training DataLoader's dataset and collated by its ``collate_fn``.
        every: Measure at step 0, at the powers of two below ``every``, then every ``every`` optimizer steps.
        stop_on: A regime label (``"lazy"``, ``"transitional"``, ``"rich"``) or alert kind (``"regime_shift"``,
            ``"non_finite"``, ...), or several, that stops training.
        logdir: Write here instead of the logger's folder.
        probe_size: Examples drawn from the training data when ``probe`` is not given.
        probe_seed: Seed of that draw.
        **options: Other :class:`regimescope.RegimeMonitor` arguments (``indicators``, ``alert_rules``,
            ``on_alert``, ``mode``, ``dtype``, ``output_fn``, ``layers``, ``implementation``, ``output_projection``
            and ``sketch`` (e.g. ``output_projection=8`` for a language model), ``sinks``,
            ``distributed="split_layers"`` to share the kernel's layer blocks among the DDP ranks, ...).

    Attributes:
        monitor: The :class:`regimescope.RegimeMonitor` of the current (or last) fit, ``None`` before training.

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
        self._options, self._stop, self._probe = adapter_arguments(
            type(self).__name__, options, _SUPPLIED, probe, stop_on
        )
        self._every = every
        self._logdir_arg = logdir
        self._probe_size = probe_size
        self._probe_seed = probe_seed
        self._logdir: Path | None = None
        self._pending_state: dict[str, Any] | None = None
        self._failed = False
        self.monitor: RegimeMonitor | None = None

    # ------------------------------------------------------------------------------------------- set-up
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Validate the strategy and a given probe, and resolve the log folder (stage ``"fit"`` only).

        Raises:
            ValueError: For a sharding strategy, or a probe the module cannot run on.
        """
        if stage != "fit":
            return
        if isinstance(trainer.strategy, _SHARDED_STRATEGIES):
            raise ValueError(
                f"RegimeCallback cannot measure under {type(trainer.strategy).__name__}: FSDPStrategy wraps the "
                "model in FullyShardedDataParallel (FSDP1), whose flat parameters regimescope cannot read, and "
                "ModelParallelStrategy may add tensor parallelism, which it does not measure (RegimeMonitor "
                "measures models sharded by fully_shard alone, in a plain training loop). Use strategy='ddp' (or a "
                "single device), or remove the callback."
            )
        if self._probe is not None and next(pl_module.parameters(), None) is not None:
            output_fn = self._options.get("output_fn")
            self._probe.to(model_device(pl_module)).check(pl_module, output_fn, kernel_options(self._options)["mode"])
        self._logdir = self._resolve_logdir(trainer)

    def _resolve_logdir(self, trainer: Trainer) -> Path:
        if self._logdir_arg is not None:
            return Path(self._logdir_arg)
        tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tensorboard is not None:
            return Path(tensorboard.log_dir)
        return Path(trainer.log_dir) / "regimescope"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Build the monitor on the module (on its device, restored), load resumed state, measure step 0."""
        probe = resolve_probe(
            self._probe,
            trainer.train_dataloader,
            size=self._probe_size,
            seed=self._probe_seed,
            device=model_device(pl_module),
        )
        self.monitor = RegimeMonitor(
            pl_module,
            probe,
            logdir=self._logdir,
            every=self._every,
            stop_on=self._stop.alert_kinds,
            **self._options,
        )
        if self._pending_state is not None:
            self.monitor.load_state_dict(self._pending_state)
            self._pending_state = None
        self.monitor.attach()
        logger.info("regimescope: measuring this run; logs in %s", self._logdir)

    # ---------------------------------------------------------------------------------------- measuring
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Measure at ``trainer.global_step`` if the schedule says so, and stop the trainer when ``stop_on`` is met."""
        self.monitor.step(trainer.global_step)
        if self._stop.reached(self.monitor):
            trainer.should_stop = True

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Remember that the fit failed, so that :meth:`teardown` closes without a final measurement."""
        self._failed = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Close the monitor at the end of the fit, taking the measurement the budget deferred unless the fit failed
        (the monitor keeps its verdict and history)."""
        if stage == "fit" and self.monitor is not None:
            self.monitor.close(final=not self._failed)

    # -------------------------------------------------------------------------------------------- state
    @property
    def state_key(self) -> str:
        """The key of this callback's state in Lightning checkpoints: its class, log folder and schedule, so that two
        callbacks (e.g. two probes written to two folders) keep their own step-0 references."""
        return self._generate_state_key(
            logdir=None if self._logdir_arg is None else str(self._logdir_arg),
            every=self._every,
            probe_size=self._probe_size,
            probe_seed=self._probe_seed,
            options=sorted(self._options),
        )

    def state_dict(self) -> dict[str, Any]:
        """The monitor's state (step-0 references, verdict, history) for Lightning checkpoints."""
        if self.monitor is not None:
            return self.monitor.state_dict()
        return dict(self._pending_state or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep a checkpoint's monitor state; the next fit's monitor loads it before it would measure step 0."""
        self._pending_state = dict(state_dict) or None
