"""RegimeCallback in real Lightning fits on CPU: tags in the run's event files, steps, resume, stop, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

pl = pytest.importorskip(
    "lightning.pytorch", reason="the `lightning` extra is not installed (pip install -e '.[lightning]')"
)
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from lightning.pytorch.strategies import FSDPStrategy  # noqa: E402
from regimescope.integrations.lightning import RegimeCallback  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from regimescope.sinks import read_jsonl  # noqa: E402
from tests.integrations._resume import assert_resumed_like  # noqa: E402
from tests.robustness._attach_models import LoRA  # noqa: E402

SCORE = "regimescope/regime/score"


class Regressor(pl.LightningModule):
    """A two-layer ReLU net on a linear target; ``init_scale`` < 1 shrinks the initial weights (rich learning)."""

    def __init__(self, init_scale: float = 1.0, lr: float = 0.1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
        with torch.no_grad():
            for p in self.net.parameters():
                p.mul_(init_scale)
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = (self(x) - y).pow(2).mean()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", (self(x) - y).pow(2).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader(n: int = 32, batch_size: int = 8) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=generator)
    y = x[:, :1] * 2.0 - x[:, 1:2]
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size)


def _trainer(root: Path, **kwargs) -> pl.Trainer:
    settings = dict(
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    settings.update(kwargs)
    return pl.Trainer(**settings)


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events


def test_fit_writes_the_tags_into_the_runs_tensorboard_logger(tmp_path: Path) -> None:
    callback = RegimeCallback(every=4, probe_size=16, max_overhead=None)
    logger = TensorBoardLogger(tmp_path, name="run")
    trainer = _trainer(tmp_path, max_steps=8, logger=logger, callbacks=[callback], num_sanity_val_steps=2,
                       enable_checkpointing=False)
    trainer.fit(Regressor(), _loader(), _loader(16))
    events = _events(Path(logger.log_dir))
    tags = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars(SCORE)] == [0, 1, 2, 4, 8]
    assert "regimescope/kernel/distance_from_init" in tags
    assert "train_loss" in tags  # the run's own curves sit in the same run
    assert [r.step for r in read_jsonl(Path(logger.log_dir) / "regimescope.jsonl")] == [0, 1, 2, 4, 8]
    assert callback.monitor.probe.size == 16
    assert callback.monitor.probe.targets is not None


class Failing(Regressor):
    """Raises at its fourth training step."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.global_step == 3:
            raise RuntimeError("the user's training step failed")
        return super().training_step(batch, batch_idx)


def test_a_fit_ends_with_the_measurement_the_budget_deferred_unless_it_failed(tmp_path: Path) -> None:
    """Steps of this toy take microseconds: a 5% budget allows nothing after step 0 during the fit, and the
    monitor takes the deferred measurement as the fit ends, at its last step; a failed fit closes without it."""
    callback = RegimeCallback(every=4, probe_size=16)
    trainer = _trainer(tmp_path, max_steps=8, logger=False, callbacks=[callback], enable_checkpointing=False)
    trainer.fit(Regressor(), _loader())
    assert [r.step for r in callback.monitor.history] == [0, 8]
    failing = RegimeCallback(every=4, probe_size=16)
    trainer = _trainer(tmp_path, max_steps=8, logger=False, callbacks=[failing], enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="training step failed"):
        trainer.fit(Failing(), _loader())
    assert [r.step for r in failing.monitor.history] == [0]


def test_gradient_accumulation_measures_each_optimizer_step_once(tmp_path: Path) -> None:
    callback = RegimeCallback(every=2, probe_size=16, max_overhead=None)
    trainer = _trainer(tmp_path, max_steps=4, accumulate_grad_batches=2, logger=False, callbacks=[callback],
                       enable_checkpointing=False)
    trainer.fit(Regressor(), _loader(64))
    assert trainer.global_step == 4
    assert [r.step for r in callback.monitor.history] == [0, 1, 2, 4]


def test_without_a_tensorboard_logger_it_writes_its_own_sub_run(tmp_path: Path) -> None:
    callback = RegimeCallback(every=2, probe_size=16, distributed="split_layers", max_overhead=None)  # one process: as "rank0"
    trainer = _trainer(tmp_path, max_steps=2, logger=False, callbacks=[callback], enable_checkpointing=False)
    trainer.fit(Regressor(), _loader())
    assert [e.step for e in _events(tmp_path / "regimescope").Scalars(SCORE)] == [0, 1, 2]
    assert callback.monitor.distributed.value == "split_layers"


def test_resumed_fit_keeps_step0_references_and_continues_the_same_curves(tmp_path: Path) -> None:
    def fit(root: Path, epochs: int, ckpt_path: Path | None = None) -> RegimeCallback:
        callback = RegimeCallback(every=2, probe_size=16, max_overhead=None)
        checkpoints = ModelCheckpoint(dirpath=root / "ckpt", save_last=True)
        trainer = _trainer(root, max_epochs=epochs, logger=TensorBoardLogger(root, name="run"),
                           callbacks=[callback, checkpoints])
        trainer.fit(Regressor(init_scale=0.2), _loader(), ckpt_path=ckpt_path)
        return callback

    uninterrupted = fit(tmp_path / "a", epochs=3)
    fit(tmp_path / "b", epochs=1)
    resumed = fit(tmp_path / "b", epochs=3, ckpt_path=tmp_path / "b" / "ckpt" / "last.ckpt")

    assert_resumed_like(uninterrupted.monitor, resumed.monitor, [0, 1, 2, 4, 6, 8, 10, 12], rel=1e-5, abs=1e-7)
    second_run = Path(resumed.monitor.logdir)
    assert [r.step for r in read_jsonl(second_run / "regimescope.jsonl")] == [6, 8, 10, 12]


def test_stop_on_rich_stops_the_trainer_at_that_measurement(tmp_path: Path) -> None:
    callback = RegimeCallback(every=10, probe_size=16, stop_on="rich", max_overhead=None)
    trainer = _trainer(tmp_path, max_steps=1000, logger=False, callbacks=[callback], enable_checkpointing=False)
    trainer.fit(Regressor(init_scale=0.05), _loader(32, batch_size=32))
    assert callback.monitor.regime.label == "rich"
    assert trainer.global_step == callback.monitor.regime.step < 1000


class ZeroInit(Regressor):
    """A healthy zero-initialised regressor: a zero first-layer bias, a LoRA-style update whose factor starts at zero,
    and a zero head (weight and bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), LoRA(16), nn.ReLU(), nn.Linear(16, 1))
        for zero in (self.net[0].bias, self.net[4].weight, self.net[4].bias):
            nn.init.zeros_(zero)


def test_stop_on_non_finite_never_stops_a_zero_initialised_model(tmp_path: Path) -> None:
    callback = RegimeCallback(every=2, probe_size=16, stop_on="non_finite", max_overhead=None)
    trainer = _trainer(tmp_path, max_steps=6, logger=False, callbacks=[callback], enable_checkpointing=False)
    trainer.fit(ZeroInit(), _loader())
    assert trainer.global_step == 6 and not callback.monitor.stop_requested
    assert [r.step for r in callback.monitor.history] == [0, 1, 2, 4, 6] and not callback.monitor.paused


def test_a_probe_the_model_cannot_run_fails_in_setup_with_its_shapes(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, max_steps=2, logger=False, callbacks=[RegimeCallback(torch.randn(8, 7))],
                       enable_checkpointing=False)
    with pytest.raises(ValueError, match=r"input shapes \(8, 7\)"):
        trainer.fit(Regressor(), _loader())
    assert trainer.global_step == 0


def test_a_sharding_strategy_is_refused_in_setup() -> None:
    class Sharded:
        strategy = FSDPStrategy()

    with pytest.raises(ValueError, match="FSDPStrategy.*strategy='ddp'"):
        RegimeCallback().setup(Sharded(), Regressor(), "fit")


def test_wrong_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="neither regime labels"):
        RegimeCallback(stop_on="rch")
    with pytest.raises(TypeError, match=r"\['optimizer'\]"):
        RegimeCallback(optimizer=None)
    with pytest.raises(ValueError, match="`distributed` must be one of 'rank0', 'split_layers'; received 'all'"):
        RegimeCallback(distributed="all")


def test_kernel_options_reach_the_monitor_and_are_checked_at_construction(tmp_path: Path) -> None:
    callback = RegimeCallback(every=2, probe_size=16, output_projection=1, sketch=8, max_overhead=None)
    trainer = _trainer(tmp_path, max_steps=2, logger=False, callbacks=[callback], enable_checkpointing=False)
    trainer.fit(Regressor(), _loader())
    assert (callback.monitor.config.output_projection, callback.monitor.config.sketch) == (1, 8)
    assert [r.step for r in callback.monitor.history] == [0, 1, 2]
    with pytest.raises(ValueError, match="`sketch` must be a positive int or None; received -1"):
        RegimeCallback(sketch=-1)


def test_two_callbacks_keep_their_own_state_in_a_checkpoint_and_resume_from_it(tmp_path: Path) -> None:
    """Each callback's checkpoint entry is keyed by its class, log folder, schedule and probe (``state_key``): two
    callbacks watching one fit through two probes save two states, and a resumed fit gives each its own step-0
    references back (with one shared key the second would overwrite the first, and a resumed monitor would refuse
    the other probe's state)."""

    def fit(root: Path, epochs: int, ckpt_path: Path | None = None) -> tuple[RegimeCallback, RegimeCallback]:
        small = RegimeCallback(logdir=root / "small", every=2, probe_size=8, max_overhead=None)
        large = RegimeCallback(logdir=root / "large", every=2, probe_size=16, max_overhead=None)
        checkpoints = ModelCheckpoint(dirpath=root / "ckpt", save_last=True)
        trainer = _trainer(root, max_epochs=epochs, logger=False, callbacks=[small, large, checkpoints])
        trainer.fit(Regressor(init_scale=0.2), _loader(), ckpt_path=ckpt_path)
        return small, large

    first = fit(tmp_path, epochs=1)
    assert first[0].state_key != first[1].state_key
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert {first[0].state_key, first[1].state_key} <= set(saved)
    small, large = fit(tmp_path, epochs=2, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    for before, after in zip(first, (small, large)):
        assert not after.monitor.paused
        reference = before.monitor.state_dict()["init"]["layer_kernels"]
        resumed = after.monitor.state_dict()["init"]["layer_kernels"]
        assert reference.keys() == resumed.keys()
        assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert small.monitor.probe.size == 8 and large.monitor.probe.size == 16
