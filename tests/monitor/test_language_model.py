"""A plain-PyTorch causal transformer language model monitored out of the box: token targets, next-token probe,
output projection, validation at ``attach()``, bit-identical training."""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import regimescope as rs

capture_module = importlib.import_module("regimescope.capture.capture")  # the package exports a function of that name

VOCAB, LENGTH = 32, 8


class CausalLM(nn.Module):
    """Token and position embeddings, one causal pre-norm transformer layer (dropout on), a vocabulary head."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.position = nn.Parameter(0.1 * torch.randn(LENGTH, width))
        self.block = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.1, batch_first=True, norm_first=True)
        self.head = nn.Linear(width, VOCAB)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(LENGTH), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, T, VOCAB)``; position ``t`` sees the tokens up to ``t``."""
        length = tokens.shape[1]
        h = self.embed(tokens) + self.position[:length]
        return self.head(self.block(h, src_mask=self.mask[:length, :length], is_causal=True))


def _sequences(n: int, generator: torch.Generator) -> torch.Tensor:
    """Arithmetic sequences modulo the vocabulary: each next token is predictable from the previous two."""
    start = torch.randint(0, VOCAB, (n, 1), generator=generator)
    step = torch.randint(1, 4, (n, 1), generator=generator)
    return (start + step * torch.arange(LENGTH)) % VOCAB


def _train(monitored: bool, steps: int = 12) -> dict:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    model = CausalLM()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    monitor = None
    if monitored:
        probe = rs.Probe.next_token(_sequences(12, torch.Generator().manual_seed(2)))
        monitor = rs.RegimeMonitor(
            model, probe, optimizer=optimizer, every=4, output_projection=8, max_overhead=None
        ).attach()
    for _ in range(steps):
        tokens = _sequences(16, generator)
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"model": model, "monitor": monitor, "rng": torch.get_rng_state(), "loss": loss.item()}


def test_a_causal_lm_gets_a_verdict_and_trains_bit_identically() -> None:
    plain, watched = _train(False), _train(True)
    monitor = watched["monitor"]
    assert not monitor.paused
    assert [r.step for r in monitor.history] == [0, 1, 2, 4, 8, 12]
    assert monitor.regime is not None and monitor.regime.label in ("lazy", "transitional", "rich")
    assert monitor.probe.target_layout is rs.functional.alignment.TargetLayout.TOKENS
    last = monitor.history[-1].scalars
    assert -1.0 <= last["regimescope/kernel/target_alignment"] <= 1.0
    plain_state, watched_state = plain["model"].state_dict(), watched["model"].state_dict()
    assert all(torch.equal(plain_state[name], watched_state[name]) for name in plain_state)
    assert torch.equal(plain["rng"], watched["rng"]) and plain["loss"] == watched["loss"]


def test_next_token_targets_are_the_labels_shifted_left() -> None:
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    probe = rs.Probe.next_token({"input_ids": tokens, "attention_mask": torch.ones_like(tokens)})
    assert probe.targets.tolist() == [[2, 3, 4, -100], [6, 7, 8, -100]]
    labels = torch.tensor([[-100, 2, 3, 4], [-100, 6, -100, 8]])
    assert rs.Probe.next_token(tokens, labels).targets.tolist() == [[2, 3, 4, -100], [6, -100, 8, -100]]
    with pytest.raises(ValueError, match=r"\(n, T\) integer labels.*\(2, 4, 1\)"):
        rs.Probe.next_token(torch.randn(2, 4, 1))


def test_target_errors_surface_at_attach_before_any_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was computed before the targets were checked")

    monkeypatch.setattr(capture_module, "empirical_ntk", no_kernel)
    model, tokens = CausalLM(), _sequences(6, torch.Generator().manual_seed(0))
    too_long = torch.randint(0, VOCAB, (6, LENGTH + 1))
    with pytest.raises(ValueError, match=r"\(6, 9\) match the model's outputs \(6, 8, 32\) in no layout"):
        rs.RegimeMonitor(model, rs.Probe(tokens, too_long)).attach()
    with pytest.raises(ValueError, match=r"range over \[0, 40\].*32 outputs per position"):
        out_of_vocabulary = torch.full_like(tokens, 40).index_fill_(1, torch.tensor([0]), 0)
        rs.RegimeMonitor(model, rs.Probe(tokens, out_of_vocabulary)).attach()


def test_unshifted_language_model_labels_are_flagged(caplog: pytest.LogCaptureFixture) -> None:
    model, tokens = CausalLM(), _sequences(6, torch.Generator().manual_seed(0))
    probe = rs.Probe(tokens, tokens)
    with caplog.at_level("WARNING"):
        probe.check(model)
    assert "Probe.next_token" in caplog.text
    assert probe.output_shape == (LENGTH, VOCAB)
