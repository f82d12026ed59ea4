"""The networks of the real-architecture runs: ResNet-18's layout with BatchNorm and a Hugging Face GPT-2."""

from __future__ import annotations

import torch
from torch import nn

from regimescope.outputs import default_output
from regimescope.scenarios.architectures.size import Size
from regimescope.scenarios.architectures.tasks import LENGTH, VOCAB
from regimescope.scenarios.resnet import ResNet18


def resnet(size: Size, widen: int = 1) -> nn.Module:
    """ResNet-18 for small images (3x3 stem, no max-pool, PyTorch's default initialisation) with ``widen *
    size.width`` channels in its first stage, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ResNet18(classes=10, width=widen * size.width, small_inputs=True, torchvision_init=False)


def gpt2(size: Size, widen: int = 1) -> nn.Module:
    """A seeded two-layer GPT-2 of width ``widen * size.embedding`` with an untied head (so that the head can be
    trained alone) and eager attention (forward-mode derivatives, for :func:`linearisation_gap`)."""
    import transformers

    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=LENGTH,
        n_embd=widen * size.embedding,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(config)


class Logits(nn.Module):
    """A model returning its logits as a tensor (the output-scale knob wraps a model that returns a tensor)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``default_output(model(x))``: the tensor itself, or a Hugging Face output's ``logits``."""
        return default_output(self.model(x))
