"""A zoo of small, seeded models shared by the test suite, with matching probe inputs.

Every builder returns the same weights on every call and leaves the global random state untouched; every model is
returned in train mode, as ``nn.Module`` builds it. ``inputs_for(name, n, seed)`` gives a deterministic batch in the
form the model is called with (a tensor, a tuple of positional arguments, or a dict of keyword arguments). All are
small enough for a float64 reference on two CPU cores. :data:`MODEL_NAMES` is the everyday zoo;
:data:`LAYOUT_TRAP_NAMES` are models built to defeat NTK shortcuts (see there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MODEL_SEED = 0
"""Seed of every builder's weights."""


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch inside the block without changing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _mlp_layers() -> nn.Sequential:
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def mlp() -> nn.Sequential:
    """Linear(5, 8)-ReLU-Linear(8, 8)-ReLU-Linear(8, 3) with biases; inputs ``(n, 5)``."""
    with _seeded(MODEL_SEED):
        return _mlp_layers()


def wrapped_layer(
    build: Callable[[], nn.Sequential], apply: Callable[[nn.Module], object], index: int = 2
) -> Callable[[], nn.Sequential]:
    """A builder of ``build()`` with ``apply`` (a parametrization, a legacy norm's hook) put on its layer ``index``."""

    def wrapped() -> nn.Sequential:
        model = build()
        apply(model[index])
        return model

    return wrapped


def frozen_mlp() -> nn.Sequential:
    """:func:`mlp` whose first layer ``"0"`` has ``requires_grad=False``; inputs ``(n, 5)``."""
    model = mlp()
    model[0].requires_grad_(False)
    return model


def cnn_bn() -> nn.Sequential:
    """Conv2d-BatchNorm2d-ReLU-MaxPool2d-Conv2d(dilated, no bias)-ReLU-AdaptiveAvgPool2d-Flatten-Linear.

    Inputs ``(n, 3, 8, 8)``.

    The BatchNorm has random affine parameters and running statistics moved away from (0, 1) by a few train-mode
    forwards, so its eval and train behaviours differ.
    """
    with _seeded(MODEL_SEED):
        model = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 5, 3, padding=2, dilation=2, bias=False),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(5, 3),
        )
        with torch.no_grad():
            model[1].weight.uniform_(0.5, 1.5)
            model[1].bias.normal_(0.0, 0.3)
            for _ in range(10):
                model(3.0 * torch.randn(8, 3, 8, 8) + 1.0)
    return model


class TransformerBlock(nn.Module):
    """Token embedding + learned positions (a root parameter) + a pre-norm attention/MLP block + a vocabulary head.

    Inputs: token ids ``(n, T)`` with ``T <= 4``; output ``(n, T, vocab)``.
    """

    def __init__(self, vocab: int = 7, seq_len: int = 4, width: int = 8, heads: int = 2, hidden: int = 12) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(0.5 * torch.randn(seq_len, width))
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for every position."""
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        a = self.norm1(h)
        h = h + self.attention(a, a, a, need_weights=False)[0]
        h = h + self.mlp(self.norm2(h))
        return self.head(h)


def transformer_block() -> TransformerBlock:
    """A :class:`TransformerBlock` with random LayerNorm affine parameters and attention biases."""
    with _seeded(MODEL_SEED):
        model = TransformerBlock()
        with torch.no_grad():
            for norm in (model.norm1, model.norm2):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_(0.0, 0.2)
            model.attention.in_proj_bias.normal_(0.0, 0.2)
            model.attention.out_proj.bias.normal_(0.0, 0.2)
    return model


class TiedLM(nn.Module):
    """Embedding -> Linear -> tanh -> output Linear whose weight is the embedding's (tied, no bias).

    Inputs: token ids ``(n, T)``; output ``(n, T, vocab)``. The tied weight belongs to ``"embed"``.
    """

    def __init__(self, vocab: int = 6, width: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for every position."""
        return self.head(torch.tanh(self.mix(self.embed(tokens))))


def tied_lm() -> TiedLM:
    """A :class:`TiedLM`."""
    with _seeded(MODEL_SEED):
        return TiedLM()


class SeqMLP(nn.Module):
    """Linear(4, 6)-ReLU-Linear(6, 3) applied to every position of ``(n, T, 4)`` inputs, then averaged over T."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over positions of the per-position outputs, ``(n, 3)``."""
        return self.layers(x).mean(dim=1)


def seq_mlp() -> SeqMLP:
    """A :class:`SeqMLP`; inputs ``(n, 5, 4)``."""
    with _seeded(MODEL_SEED):
        return SeqMLP()


class DictOutputModel(nn.Module):
    """Called with keyword inputs ``features (n, 4)`` and ``context (n, 6)``; returns ``{"logits", "aux"}``.

    ``aux_head`` does not influence ``"logits"``, so its kernel block is zero for the default output.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 6)
        self.logits_head = nn.Linear(6, 3)
        self.aux_head = nn.Linear(6, 2)

    def forward(self, features: torch.Tensor, context: torch.Tensor) -> dict[str, torch.Tensor]:
        """Two heads on a shared tanh layer."""
        h = torch.tanh(self.body(features) + context)
        return {"logits": self.logits_head(h), "aux": self.aux_head(h)}


def dict_output_model() -> DictOutputModel:
    """A :class:`DictOutputModel`; inputs are a dict (see :func:`inputs_for`)."""
    with _seeded(MODEL_SEED):
        return DictOutputModel()


class TwoInputModel(nn.Module):
    """Called with two positional inputs ``(n, 3)`` and ``(n, 2)``; returns a tuple ``(logits (n, 2), hidden)``.

    ``left`` is applied twice in one forward (a module reused within the graph).
    """

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Linear(3, 5)
        self.right = nn.Linear(2, 5, bias=False)
        self.out = nn.Linear(5, 2)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits first, the hidden layer second."""
        hidden = torch.relu(self.left(left) * self.right(right) + self.left(left))
        return self.out(hidden), hidden


def two_input_model() -> TwoInputModel:
    """A :class:`TwoInputModel`; inputs are a tuple (see :func:`inputs_for`)."""
    with _seeded(MODEL_SEED):
        return TwoInputModel()


def conv1d_net() -> nn.Sequential:
    """Conv1d(2, 4, 3, padding=2, dilation=2)-ReLU-Conv1d(4, 4, 3, stride=2, groups=2)-ReLU-Flatten-Linear(16, 2).

    Inputs ``(n, 2, 9)``.
    """
    with _seeded(MODEL_SEED):
        return nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv1d(4, 4, 3, stride=2, groups=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16, 2),
        )


class SeqFirstNet(nn.Module):
    """Batch-first ``(n, 4, 3)`` inputs turned sequence-first inside: ``mean_t tanh(fc(x.transpose(0, 1)))``.

    Inside the model the leading dimension of ``fc``'s input is the sequence length 4, not the batch size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 2)`` outputs."""
        return torch.tanh(self.fc(x.transpose(0, 1))).mean(dim=0)


def seq_first_net() -> SeqFirstNet:
    """A :class:`SeqFirstNet`; inputs ``(n, 4, 3)``."""
    with _seeded(MODEL_SEED):
        return SeqFirstNet()


class QueryProjectionNet(nn.Module):
    """Four learned queries projected by a Linear (not applied to the batch), scored against each encoded input.

    Inputs ``(n, 3)``; output ``(n, 4)``.
    """

    def __init__(self, queries: int = 4) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, 3))
        self.project = nn.Linear(3, 3)
        self.encode = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of every input against every projected query."""
        return torch.tanh(self.encode(x)) @ self.project(self.queries).T


def query_projection_net() -> QueryProjectionNet:
    """A :class:`QueryProjectionNet`."""
    with _seeded(MODEL_SEED):
        return QueryProjectionNet()


class FunctionalReuseNet(nn.Module):
    """A head whose weight is also used through ``F.linear`` outside its own forward, for the last two outputs.

    Inputs ``(n, 3)``; output ``(n, 4)``: ``[head(h), h**2 @ head.weight^T]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Both uses of the head weight, concatenated."""
        h = torch.tanh(self.body(x))
        return torch.cat([self.head(h), F.linear(h * h, self.head.weight)], dim=1)


def functional_reuse_net() -> FunctionalReuseNet:
    """A :class:`FunctionalReuseNet`."""
    with _seeded(MODEL_SEED):
        return FunctionalReuseNet()


class CenteredOutputs(nn.Module):
    """Wraps a model and subtracts the mean over its last output dimension, so ``sum_o f_o(x)`` is identically 0.

    A shortcut validated only on the gradient of the summed outputs sees nothing on such a model (nor on one
    returning softmax probabilities).
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The wrapped outputs, centred over the last dimension."""
        outputs = self.inner(*args, **kwargs)
        return outputs - outputs.mean(dim=-1, keepdim=True)


def _centered(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build_centered() -> nn.Module:
        return CenteredOutputs(builder())

    return build_centered


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "mlp": mlp,
    "frozen_mlp": frozen_mlp,
    "cnn_bn": cnn_bn,
    "transformer_block": transformer_block,
    "tied_lm": tied_lm,
    "seq_mlp": seq_mlp,
    "dict_output_model": dict_output_model,
    "two_input_model": two_input_model,
    "conv1d_net": conv1d_net,
    "seq_first_net": seq_first_net,
    "query_projection_net": query_projection_net,
    "functional_reuse_net": functional_reuse_net,
    "centered_seq_first_net": _centered(seq_first_net),
    "centered_query_projection_net": _centered(query_projection_net),
    "centered_functional_reuse_net": _centered(functional_reuse_net),
}
"""Every zoo model by name."""

LAYOUT_TRAP_NAMES: tuple[str, ...] = (
    "seq_first_net",
    "query_projection_net",
    "functional_reuse_net",
    "centered_seq_first_net",
    "centered_query_projection_net",
    "centered_functional_reuse_net",
)
"""Models that defeat shortcuts assuming a layer's leading dimension is the batch, or that a layer's weight is used
only in its own forward. With 4 probe inputs the leading dimensions coincide with the batch size; the
``centered_`` variants (:class:`CenteredOutputs`) also hide the traps from checks on the summed outputs."""

MODEL_NAMES: tuple[str, ...] = tuple(name for name in BUILDERS if name not in LAYOUT_TRAP_NAMES)
"""The everyday zoo; :func:`build` and :func:`inputs_for` also accept :data:`LAYOUT_TRAP_NAMES`."""


def build(name: str) -> nn.Module:
    """A fresh zoo model by name.

    Raises:
        KeyError: For an unknown name, listing the known ones.
    """
    if name not in BUILDERS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name]()


def inputs_for(name: str, n: int, seed: int = 1) -> Any:
    """A deterministic batch of ``n`` inputs for the zoo model ``name``, in the form it is called with.

    Args:
        name: One of :data:`MODEL_NAMES` or :data:`LAYOUT_TRAP_NAMES`.
        n: Batch size.
        seed: Seed of the batch (different seeds give different batches).

    Returns:
        A float32 tensor, an int64 token tensor, a tuple (``two_input_model``) or a dict (``dict_output_model``).

    Raises:
        KeyError: For an unknown name.
    """
    name = name.removeprefix("centered_")
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "mlp": (n, 5),
        "frozen_mlp": (n, 5),
        "cnn_bn": (n, 3, 8, 8),
        "seq_mlp": (n, 5, 4),
        "conv1d_net": (n, 2, 9),
        "seq_first_net": (n, 4, 3),
        "query_projection_net": (n, 3),
        "functional_reuse_net": (n, 3),
    }
    if name in shapes:
        return torch.randn(*shapes[name], generator=g)
    if name == "transformer_block":
        return torch.randint(0, 7, (n, 4), generator=g)
    if name == "tied_lm":
        return torch.randint(0, 6, (n, 3), generator=g)
    if name == "dict_output_model":
        return {"features": torch.randn(n, 4, generator=g), "context": torch.randn(n, 6, generator=g)}
    if name == "two_input_model":
        return (torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g))
    raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(BUILDERS)}")
