"""How big the real-architecture runs are: the tests' size and the benchmark's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """How big the runs are.

    Attributes:
        image: Side of the ResNet's input images (digits are 8x8; larger sides are resized bilinearly).
        width: Channels of the ResNet's first stage (``width, 2 width, 4 width, 8 width``).
        embedding: GPT-2's width.
        probe: Examples in the monitor's probe.
        steps: Training steps (fine-tuning steps for ``fine-tune``).
        pretrain_steps: Steps of the pre-training of ``fine-tune``.
        every: Measurement interval (the monitor also measures at step 0 and, with ``early``, at the powers of two
            below ``every``).
        early: Measure at the powers of two below ``every``.
    """

    image: int
    width: int
    embedding: int
    probe: int
    steps: int
    pretrain_steps: int
    every: int
    early: bool


QUICK = Size(image=8, width=4, embedding=32, probe=16, steps=60, pretrain_steps=200, every=30, early=False)
"""The tests' size: a few seconds per run on one core."""
FULL = Size(image=16, width=8, embedding=64, probe=16, steps=400, pretrain_steps=400, every=100, early=True)
"""The benchmark's size."""
