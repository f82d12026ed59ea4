"""Models a user brings that break naive monitors: stateful forwards, parametrizations, tied, zero-initialised,
frozen and unused parameters, float64, and a forward that fails on the probe. Every builder is seeded and returns
``(model, input shape)``; models are in train mode."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from tests._models import wrapped_layer

IN, OUT = 4, 3


class RunningNorm(nn.Module):
    """A normaliser that keeps a running mean of its inputs (train mode) and counts every call in a buffer."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.training:
            with torch.no_grad():
                self.mean.mul_(0.9).add_(0.1 * x.mean(0))
        return x - self.mean


class Tied(nn.Module):
    """Two hidden layers sharing one weight Parameter (``b.weight is a.weight``)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.a, self.b, self.out = nn.Linear(IN, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, OUT)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(torch.relu(self.b(torch.relu(self.a(h)))))


class Reused(nn.Module):
    """One hidden layer called twice (weight sharing through the call graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.hidden, self.out = nn.Linear(IN, 8), nn.Linear(8, 8), nn.Linear(8, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(torch.relu(self.hidden(torch.relu(self.hidden(h)))))


class Doubled(nn.Module):
    """A parametrization regimescope does not know: ``w = 2 w_original``."""

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return 2.0 * original


class LoRA(nn.Module):
    """A frozen base layer plus a low-rank update ``B A`` whose ``B`` starts at zero."""

    def __init__(self, width: int, rank: int = 2) -> None:
        super().__init__()
        self.base = nn.Linear(width, width)
        self.base.requires_grad_(False)
        self.down, self.up = nn.Linear(width, rank, bias=False), nn.Linear(rank, width, bias=False)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x))


class FailsOnProbe(nn.Module):
    """An MLP whose forward raises on a batch of 7 (the probe size the tests use), as a user's assertion would."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 7:
            raise RuntimeError("this model refuses batches of 7")
        return self.net(x)


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(IN, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, OUT))


def _custom_parametrization() -> nn.Module:
    model = _mlp()
    parametrize.register_parametrization(model[2], "weight", Doubled())
    parametrize.register_parametrization(model[0], "bias", Doubled())
    return model


def _stateful() -> nn.Module:
    return nn.Sequential(RunningNorm(IN), *_mlp())


def _bn_dropout() -> nn.Module:
    return nn.Sequential(nn.Linear(IN, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, OUT))


def _zero_init() -> nn.Module:
    model = nn.Sequential(nn.Linear(IN, 8), nn.ReLU(), LoRA(8), nn.ReLU(), nn.Linear(8, OUT))
    nn.init.zeros_(model[0].bias)
    nn.init.zeros_(model[4].weight)
    nn.init.zeros_(model[4].bias)
    return model


def _all_zero() -> nn.Module:
    model = _mlp()
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    return model


def _frozen() -> nn.Module:
    model = _mlp()
    model[0].requires_grad_(False)
    return model


def _unused() -> nn.Module:
    model = _mlp()
    model.register_parameter("unused", nn.Parameter(torch.randn(5)))
    return model


def _float64() -> nn.Module:
    return _mlp().double()


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "running_norm": _stateful,
    "bn_dropout": _bn_dropout,
    "weight_norm": wrapped_layer(_mlp, parametrizations.weight_norm),
    "spectral_norm": wrapped_layer(_mlp, parametrizations.spectral_norm),
    "orthogonal": wrapped_layer(_mlp, parametrizations.orthogonal),
    "legacy_weight_norm": wrapped_layer(_mlp, nn.utils.weight_norm),
    "legacy_spectral_norm": wrapped_layer(_mlp, nn.utils.spectral_norm),
    "custom_parametrization": _custom_parametrization,
    "tied": Tied,
    "reused": Reused,
    "zero_init": _zero_init,
    "all_zero": _all_zero,
    "frozen": _frozen,
    "unused": _unused,
    "float64": _float64,
    "fails_on_probe": FailsOnProbe,
}
"""Every model of the battery, by name."""


def build(name: str) -> nn.Module:
    """The model ``name``, with the same weights on every call (the global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BUILDERS[name]()


def dtype_of(model: nn.Module) -> torch.dtype:
    """The dtype the model's inputs must have."""
    return next(model.parameters()).dtype


def train_steps(
    model: nn.Module, optimizer: torch.optim.Optimizer, shape: tuple[int, ...], steps: int, classes: int = OUT
) -> None:
    """``steps`` cross-entropy steps on random batches of 16 inputs of ``shape`` (in the model's dtype), drawing
    from the ``random`` and numpy generators too, as a user's loop would."""
    dtype = dtype_of(model)
    for _ in range(steps):
        x = torch.randn(16, *shape, dtype=dtype)
        y = torch.randint(0, classes, (16,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        random.random()
        np.random.rand()
