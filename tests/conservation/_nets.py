"""Seeded float64 networks and plain training loops shared by the conservation and balance tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from regimescope.conservation import BalancePair, LayerPair, outgoing_weights


def seeded(builder: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """``builder()`` in float64 with weights drawn from ``seed``, leaving the global random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder().double()


def two_layer(activation: nn.Module | None = None, seed: int = 0, hidden: int = 6) -> nn.Sequential:
    """Linear(4, hidden)-activation-Linear(hidden, 2) with biases, float64."""
    return seeded(lambda: nn.Sequential(nn.Linear(4, hidden), activation or nn.ReLU(), nn.Linear(hidden, 2)), seed)


def deep_mlp(seed: int = 0) -> nn.Sequential:
    """Four Linear layers with ReLU between, float64."""
    return seeded(
        lambda: nn.Sequential(
            nn.Linear(4, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2)
        ),
        seed,
    )


def conv_conv(seed: int = 0) -> nn.Sequential:
    """Conv2d-ReLU-MaxPool2d-Conv2d-Flatten; inputs ``(n, 2, 8, 8)``."""
    return seeded(
        lambda: nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 2), nn.Flatten()), seed
    )


def conv_linear(seed: int = 0) -> nn.Sequential:
    """Conv2d-ReLU-AvgPool2d-Flatten-Linear: channel ``c`` is read by 9 Linear columns; inputs ``(n, 2, 8, 8)``."""
    return seeded(
        lambda: nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(5 * 3 * 3, 2)),
        seed,
    )


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        return self.b(h) if h.sum() > 0 else self.b(-h)


class FunctionalNet(nn.Module):
    """Activations as functional calls: ``fc2(F.relu(fc1(x)))`` then ``out(torch.tanh(fc2(...)))``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 3)
        self.out = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


INPUT_WIDTHS = {"AttentionNet": 15, "LinearAttention": 20}
"""Flat input widths of the token models (their first layer reads one token of the flattened input)."""


def inputs_for(model: nn.Module, n: int = 16, seed: int = 1) -> torch.Tensor:
    """A float64 batch shaped for ``model``'s first layer."""
    first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    shape = (n, first.in_features) if isinstance(first, nn.Linear) else (n, first.in_channels, 8, 8)
    if type(model).__name__ in INPUT_WIDTHS:
        shape = (n, INPUT_WIDTHS[type(model).__name__])
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def targets_for(model: nn.Module, x: torch.Tensor, seed: int = 2) -> torch.Tensor:
    """Random regression targets shaped like ``model(x)``."""
    with torch.no_grad():
        shape = model(x).shape
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradients of ``0.5 * mean |model(x) - y|^2`` for every trainable parameter."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    loss = 0.5 * (model(x) - y).square().sum(1).mean()
    grads = torch.autograd.grad(loss, [p for _, p in named])
    return {name: g for (name, _), g in zip(named, grads)}


def gd_step(model: nn.Module, grads: dict[str, torch.Tensor], rates: dict[str, float] | float) -> None:
    """One gradient-descent step ``p <- p - eta_p g_p`` in place."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in grads:
                rate = rates if isinstance(rates, float) else rates[name]
                param -= rate * grads[name]


def batches(n: int, size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless random minibatch indices from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from torch.randperm(n, generator=generator).split(size)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int | None = None,
    seed: int = 3,
) -> None:
    """``steps`` optimizer steps on ``0.5 * mean |model(x) - y|^2``, full batch or seeded minibatches."""
    indices = batches(x.shape[0], batch_size or x.shape[0], seed)
    for _ in range(steps):
        batch = next(indices)
        optimizer.zero_grad()
        (0.5 * (model(x[batch]) - y[batch]).square().sum(1).mean()).backward()
        optimizer.step()


def unit_gradient_squares(pair: LayerPair, grads: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(|g_a_k|^2, |g_w_k|^2, g_b_k^2)`` per unit, mapped like the weights (written out for layer pairs)."""
    g_a = outgoing_weights(pair, grads[pair.out_weight]).square().sum(1)
    g_w = grads[pair.in_weight].reshape(pair.units, -1).square().sum(1)
    g_b = grads[pair.in_bias].square() if pair.in_bias is not None else torch.zeros_like(g_w)
    return g_a, g_w, g_b


def signed_gradient_balance(pair: BalancePair, grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_out |g|^2 - sum_in |g|^2`` per unit over every role of the pair (its rows applied to the gradients)."""
    rows = pair.unit_rows(grads)
    sign = {"out_weight": 1.0, "out_bias": 1.0, "in_weight": -1.0, "in_bias": -1.0}
    return sum(sign[role] * row.square().sum(1) for role, row in rows.items())


class ResidualMLP(nn.Module):
    """``stem -> relu -> h + fc2(relu(fc1(h))) -> relu -> head``: the block's inner units ``fc1-fc2`` are a pair."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 6)
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        return self.head(F.relu(h + self.fc2(F.relu(self.fc1(h)))))


class ResidualCNN(nn.Module):
    """A ResNet basic block: ``x + bn2(conv2(relu(bn1(conv1(x)))))``, then global pooling and a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        h = F.relu(h + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(h))))))
        return self.fc(F.max_pool2d(h, 2).mean((2, 3)))


class NormMLP(nn.Module):
    """``fc1 -> LayerNorm -> relu -> fc2``: the norm's ``(gamma, beta)`` pair with ``fc2``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.norm = nn.LayerNorm(6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.norm(self.fc1(x))))


class AttentionNet(nn.Module):
    """Tokens ``(n, 5, 3)`` embedded, one ``nn.MultiheadAttention`` (2 heads of 4), mean-pooled to one output."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(x.size(0), 5, 3))
        return self.head(self.attn(h, h, h, need_weights=False)[0].mean(1))


class LinearAttention(nn.Module):
    """Attention written with separate ``nn.Linear`` projections (2 heads of 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(4, 6)
        self.k = nn.Linear(4, 6)
        self.v = nn.Linear(4, 6)
        self.o = nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.view(x.size(0), 5, 4)
        n, t, _ = tokens.shape

        def heads(h: torch.Tensor) -> torch.Tensor:
            return h.view(n, t, 2, 3).transpose(1, 2)

        q, k, v = heads(self.q(tokens)), heads(self.k(tokens)), heads(self.v(tokens))
        mixed = torch.softmax(q @ k.transpose(-1, -2) / 3**0.5, dim=-1) @ v
        return self.o(mixed.transpose(1, 2).reshape(n, t, 6)).mean(1)
