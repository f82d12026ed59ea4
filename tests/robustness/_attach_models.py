"""Models a user brings that break naive monitors: stateful forwards, forwards writing into their own weights,
parametrizations (stacked, multi-tensor, on convolutions, attention, embeddings, recurrent and norm layers), tied,
zero-initialised, frozen and unused parameters, recurrent and attention layers, token inputs, float64, half, mixed
dtypes, and a forward that fails on the probe; and the training loops around them (autocast, ``optimizer.step()``
under ``inference_mode`` or ``no_grad``). Every builder is seeded; models are in train mode."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from tests._models import wrapped_layer

IN, OUT = 4, 3
LENGTH, VOCAB, SIDE = 5, 20, 4
"""Positions of a sequence or token input, token ids, side of an image input (``IN`` channels)."""


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


class Recurrent(nn.Module):
    """A recurrent layer over ``(n, LENGTH, IN)`` sequences, its last state through a linear head."""

    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn, self.head = cell(IN, 8, batch_first=True), nn.Linear(8, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class Attention(nn.Module):
    """Sequences embedded, one ``nn.MultiheadAttention`` (2 heads), mean-pooled into a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = nn.Linear(IN, 8), nn.Linear(8, OUT)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.head(self.attn(h, h, h)[0].mean(1))


class Tokens(nn.Module):
    """Token ids through an embedding (rows renormalised in place to ``max_norm`` when given), mean-pooled, then
    BatchNorm, ReLU and a linear head."""

    def __init__(self, max_norm: float | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8, max_norm=max_norm)
        self.norm, self.head = nn.BatchNorm1d(8), nn.Linear(8, OUT)
        with torch.no_grad():
            self.embedding.weight.mul_(3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.embedding(ids).mean(1))))

    def settle(self, ids: torch.Tensor) -> None:
        """Renormalise the rows a forward on ``ids`` renormalises, then stop renormalising."""
        self.embedding(ids)
        self.embedding.max_norm = None


class ConvNet(nn.Module):
    """Two 3x3 convolutions over ``(n, IN, SIDE, SIDE)`` images and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(IN, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * SIDE * SIDE, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


class ClampInForward(nn.Module):
    """Clamps its hidden weight in place under ``no_grad`` at every forward (a weight constraint done in forward),
    through the Parameter or its ``.data``."""

    def __init__(self, through_data: bool = False) -> None:
        super().__init__()
        self.hidden, self.head = nn.Linear(IN, 8), nn.Linear(8, OUT)
        self.through_data, self.clamping = through_data, True

    def clamp(self) -> None:
        with torch.no_grad():
            (self.hidden.weight.data if self.through_data else self.hidden.weight).clamp_(-0.3, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clamping:
            self.clamp()
        return self.head(torch.relu(self.hidden(x)))

    def settle(self, x: torch.Tensor) -> None:
        """Clamp as a forward does, then stop clamping."""
        self.clamp()
        self.clamping = False


class ClampThroughAList(ClampInForward):
    """Clamps its hidden weight through a list holding the Parameter, which no measurement can hand a copy."""

    def __init__(self) -> None:
        super().__init__()
        self.held = [self.hidden.weight]

    def clamp(self) -> None:
        with torch.no_grad():
            self.held[0].clamp_(-0.3, 0.3)


class MixedDtypes(nn.Module):
    """A float64 hidden layer and a float32 head, the forward casting as a user's does; float32 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.head = nn.Linear(IN, 8).double(), nn.Linear(8, OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(x.double())).float())


class LowRank(nn.Module):
    """A two-tensor parametrization ``W = A B`` of rank 2."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, s, v = torch.linalg.svd(weight, full_matrices=False)
        return u[:, :2] * s[:2], v[:2]


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


def _batchnorm_without_running_statistics() -> nn.Module:
    return nn.Sequential(nn.Linear(IN, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU(), nn.Linear(8, OUT))


def _stacked() -> nn.Module:
    model = _mlp()
    parametrizations.weight_norm(model[2])
    parametrize.register_parametrization(model[2], "weight", Doubled())
    return model


def _low_rank() -> nn.Module:
    model = _mlp()
    parametrize.register_parametrization(model[2], "weight", LowRank())
    return model


def _layer_norm_parametrized() -> nn.Module:
    model = nn.Sequential(nn.Linear(IN, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, OUT))
    parametrize.register_parametrization(model[1], "weight", Doubled())
    return model


def _conv_norms() -> nn.Module:
    model = ConvNet()
    parametrizations.spectral_norm(model.c1)
    parametrizations.weight_norm(model.c2)
    return model


def _attention_parametrized() -> nn.Module:
    model = Attention()
    parametrizations.spectral_norm(model.attn, "in_proj_weight")
    parametrizations.orthogonal(model.attn.out_proj)
    return model


def _embedding_spectral_norm() -> nn.Module:
    model = Tokens()
    parametrizations.spectral_norm(model.embedding)
    return model


def _lstm_weight_norm() -> nn.Module:
    model = Recurrent(nn.LSTM)
    parametrizations.weight_norm(model.rnn, "weight_hh_l0")
    return model


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
    "writes_through_a_list": ClampThroughAList,
    "gru": lambda: Recurrent(nn.GRU),
    "lstm": lambda: Recurrent(nn.LSTM),
    "rnn": lambda: Recurrent(nn.RNN),
    "lstm_float64": lambda: Recurrent(nn.LSTM).double(),
    "attention": Attention,
    "embedding": Tokens,
    "embedding_max_norm": lambda: Tokens(max_norm=1.0),
    "clamp_in_forward": ClampInForward,
    "clamp_through_data": lambda: ClampInForward(through_data=True),
    "batchnorm_without_running_statistics": _batchnorm_without_running_statistics,
    "bfloat16": lambda: _mlp().bfloat16(),
    "float16": lambda: _mlp().half(),
    "mixed_dtypes": MixedDtypes,
    "autocast": _mlp,
    "step_under_inference_mode": _mlp,
    "step_under_no_grad": _mlp,
    "stacked_parametrizations": _stacked,
    "low_rank_parametrization": _low_rank,
    "layer_norm_parametrized": _layer_norm_parametrized,
    "conv_norms": _conv_norms,
    "attention_parametrized": _attention_parametrized,
    "embedding_spectral_norm": _embedding_spectral_norm,
    "lstm_weight_norm": _lstm_weight_norm,
}
"""Every model of the battery, by name."""


@dataclass(frozen=True)
class Loop:
    """How a case's training loop runs around its model.

    Attributes:
        inputs: ``"vector"`` ``(n, IN)``, ``"sequence"`` ``(n, LENGTH, IN)``, ``"tokens"`` ``(n, LENGTH)`` ids or
            ``"image"`` ``(n, IN, SIDE, SIDE)``.
        forward: The context of the forward and loss (autocast).
        step: The context of ``optimizer.step()``.
    """

    inputs: str = "vector"
    forward: Callable[[], AbstractContextManager] = contextlib.nullcontext
    step: Callable[[], AbstractContextManager] = contextlib.nullcontext


_SEQUENCES = ("gru", "lstm", "rnn", "lstm_float64", "attention", "attention_parametrized", "lstm_weight_norm")
LOOPS: dict[str, Loop] = {
    **{name: Loop(inputs="sequence") for name in _SEQUENCES},
    **{name: Loop(inputs="tokens") for name in ("embedding", "embedding_max_norm", "embedding_spectral_norm")},
    "conv_norms": Loop(inputs="image"),
    "autocast": Loop(forward=lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
    "step_under_inference_mode": Loop(step=torch.inference_mode),
    "step_under_no_grad": Loop(step=torch.no_grad),
}
"""The cases whose loop is not plain training on ``(n, IN)`` vectors."""


def build(name: str) -> nn.Module:
    """The model ``name``, with the same weights on every call (the global random state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BUILDERS[name]()


def dtype_of(model: nn.Module) -> torch.dtype:
    """The dtype the model's inputs must have (its first parameter's: a mixed model casts them itself)."""
    return next(model.parameters()).dtype


def weight_versions(model: nn.Module) -> list[tuple[torch.Tensor, int]]:
    """Every parameter's value and version counter (an in-place write bumps it, even one that changes nothing)."""
    return [(p.detach().clone(), p._version) for p in model.parameters()]


def weights_untouched(model: nn.Module, before: list[tuple[torch.Tensor, int]]) -> bool:
    """Whether no parameter of ``model`` was written since :func:`weight_versions` gave ``before``."""
    return all(
        torch.equal(p, value) and p._version == version for p, (value, version) in zip(model.parameters(), before)
    )


def inputs_of(name: str, model: nn.Module, n: int) -> torch.Tensor:
    """``n`` random inputs for the case ``name`` (see :class:`Loop`), from the global generator."""
    kind = LOOPS.get(name, Loop()).inputs
    if kind == "tokens":
        return torch.randint(0, VOCAB, (n, LENGTH))
    shape = {"vector": (IN,), "sequence": (LENGTH, IN), "image": (IN, SIDE, SIDE)}[kind]
    return torch.randn(n, *shape, dtype=dtype_of(model))


def _train(
    model: nn.Module, optimizer: torch.optim.Optimizer, draw: Callable[[int], torch.Tensor], steps: int,
    classes: int, loop: Loop,
) -> None:
    for _ in range(steps):
        x = draw(16)
        y = torch.randint(0, classes, (16,))
        with loop.forward():
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        with loop.step():
            optimizer.step()
        random.random()
        np.random.rand()


def train_steps(
    model: nn.Module, optimizer: torch.optim.Optimizer, shape: tuple[int, ...], steps: int, classes: int = OUT
) -> None:
    """``steps`` cross-entropy steps on random batches of 16 inputs of ``shape`` (in the model's dtype), drawing
    from the ``random`` and numpy generators too, as a user's loop would."""
    dtype = dtype_of(model)
    _train(model, optimizer, lambda n: torch.randn(n, *shape, dtype=dtype), steps, classes, Loop())


def train_case(name: str, model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    """``steps`` steps of :func:`train_steps` on the inputs and in the loop of the case ``name``."""
    _train(model, optimizer, lambda n: inputs_of(name, model, n), steps, OUT, LOOPS.get(name, Loop()))
