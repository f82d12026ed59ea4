"""The tasks of the real-architecture runs: scikit-learn's handwritten digits (bundled with scikit-learn, no
download) and next-token prediction of sequences drawn from a random Markov chain, each with the monitor's probe."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regimescope.probe import Probe
from regimescope.scenarios.architectures.size import Size

VOCAB, LENGTH = 16, 8
"""The language models' vocabulary and sequence length."""


@dataclass
class Task:
    """A training set, how a batch is drawn from it, the loss and the monitor's probe.

    Attributes:
        inputs: Every training input.
        targets: Their targets (class labels, or the token ids themselves for next-token prediction).
        loss: ``loss(outputs, targets)``.
        probe: The monitor's probe (examples outside the training set).
        batch: Examples per training step.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    probe: Probe
    batch: int = 64

    def sample(self, step: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step`` (the same in every run with the same ``seed``)."""
        generator = torch.Generator().manual_seed(1_000_003 * seed + step)
        index = torch.randint(0, len(self.inputs), (self.batch,), generator=generator)
        return self.inputs[index], self.targets[index]


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits at position ``t`` against the token at ``t + 1``."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)
    return (images - images.mean()) / images.std(), torch.tensor(digits.target)


def digits(size: Size, half: int = 0) -> Task:
    """Digit classification on one half of scikit-learn's 1797 digits (``half`` 0 or 1).

    The probe is the first ``size.probe`` images of the half, the training set the rest.
    """
    images, labels = _digits()
    part = slice(0, len(images) // 2) if half == 0 else slice(len(images) // 2, None)
    images, labels = images[part, None], labels[part]
    if size.image != images.shape[-1]:
        images = F.interpolate(images, size=size.image, mode="bilinear")
    images = images.expand(-1, 3, -1, -1).contiguous()
    probe = Probe(images[: size.probe], labels[: size.probe])
    return Task(images[size.probe :], labels[size.probe :], F.cross_entropy, probe)


def markov_chain(seed: int) -> torch.Tensor:
    """A ``VOCAB x VOCAB`` transition matrix: each token is followed by one of two random successors, with
    probabilities 0.75 and 0.25."""
    generator = torch.Generator().manual_seed(seed)
    transitions = torch.zeros(VOCAB, VOCAB)
    for token in range(VOCAB):
        first, second = torch.randperm(VOCAB, generator=generator)[:2]
        transitions[token, first], transitions[token, second] = 0.75, 0.25
    return transitions


def related_chain(chain: torch.Tensor) -> torch.Tensor:
    """``chain`` with the probabilities of the two successors exchanged for every other token (a related task)."""
    related = chain.clone()
    related[::2] = torch.where(chain[::2] > 0, 1.0 - chain[::2], 0.0)
    return related


def markov_text(size: Size, transitions: torch.Tensor) -> Task:
    """Next-token prediction on 2048 sequences of ``LENGTH`` tokens drawn from ``transitions`` (uniform first
    token); the probe is ``size.probe`` more, with their next tokens as targets (``Probe.next_token``)."""
    n = 2048 + size.probe
    generator = torch.Generator().manual_seed(1)
    tokens = torch.empty(n, LENGTH, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, VOCAB, (n,), generator=generator)
    for t in range(1, LENGTH):
        tokens[:, t] = torch.multinomial(transitions[tokens[:, t - 1]], 1, generator=generator)[:, 0]
    train, probe = tokens[size.probe :], tokens[: size.probe]
    return Task(train, train, next_token_loss, Probe.next_token(probe))
