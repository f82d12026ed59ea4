"""Watch the regime of a Lightning run on an MNIST-like task: scikit-learn's bundled 8x8 digits (no download).

One line adds the monitor: ``Trainer(callbacks=[RegimeCallback()])``. The regimescope panels land in the run's own
TensorBoard folder, beside the loss curves. ``--init-scale`` rescales the initial weights, to compare how different
initialisations move through the regimes.

Run::

    python examples/lightning_mnist_like.py [--init-scale 0.1] [--logdir runs/lightning_digits] [--quick]
    tensorboard --logdir runs/lightning_digits
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from regimescope.integrations.lightning import RegimeCallback
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regimescope.verdict import Verdict


class DigitsMLP(pl.LightningModule):
    """A 64-128-128-10 ReLU network whose initial weights are scaled by ``init_scale``."""

    def __init__(self, init_scale: float = 1.0, lr: float = 0.05) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
        with torch.no_grad():
            for p in self.net.parameters():
                p.mul_(init_scale)
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/accuracy", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


QUICK_BUDGET = {"max_overhead": None}
"""``--quick`` runs a few steps of milliseconds each, too short for the default overhead budget to earn a second
measurement: they keep the fixed schedule so the tests see the curves. Full runs keep the default budget."""


def digits_loaders(batch_size: int = 64) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders over the 1,797 bundled digits (pixels scaled to [0, 1]), split 80/20."""
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[: int(0.8 * len(x))], order[int(0.8 * len(x)) :]
    return (
        DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
        DataLoader(TensorDataset(x[val], y[val]), batch_size=256),
    )


def main(argv: Sequence[str] | None = None) -> Verdict | None:
    """Train, print the verdict and the TensorBoard command, and return the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", default="runs/lightning_digits")
    parser.add_argument("--init-scale", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a few steps only (used by the tests)")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    train, val = digits_loaders()
    callback = RegimeCallback(
        every=4 if args.quick else 50, probe_size=32 if args.quick else 128, **QUICK_BUDGET if args.quick else {}
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1 if args.quick else args.epochs,
        limit_train_batches=8 if args.quick else None,
        limit_val_batches=1 if args.quick else None,
        logger=TensorBoardLogger(args.logdir, name="digits"),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        log_every_n_steps=5,
    )
    trainer.fit(DigitsMLP(init_scale=args.init_scale), train, val)
    verdict = callback.monitor.regime
    print(f"regime after {trainer.global_step} steps: {verdict}")
    print(f"see the curves with: tensorboard --logdir {args.logdir}")
    return verdict


if __name__ == "__main__":
    main()
