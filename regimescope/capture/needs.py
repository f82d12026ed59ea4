"""What an indicator can ask a capture to compute."""

from __future__ import annotations

import enum


class Need(enum.Enum):
    """Items one capture pass can provide; indicators declare the subset they use.

    Members are ordered from cheap to expensive; the capture merges the needs of all active indicators so
    that the costly part (the per-layer NTK) runs once per measurement.
    """

    WEIGHTS = "weights"
    """Detached copies of every trainable parameter (cheap)."""
    OUTPUTS = "outputs"
    """Model outputs on the probe, flattened to ``(n, k)`` (one forward pass)."""
    FEATURES = "features"
    """Hidden representations of the monitored layers, each flattened to ``(n, d)`` (same forward pass)."""
    ACTIVATION_PATTERNS = "activation_patterns"
    """Boolean on/off states of ReLU-family modules on the probe (same forward pass)."""
    NORMALIZATION = "normalization"
    """Running statistics of every BatchNorm layer that tracks them, and the probe's statistics at its input (same
    forward pass)."""
    KERNEL = "kernel"
    """Per-layer trace NTK on the probe, ``(n, n)`` blocks summing to the whole kernel (forward + k backward passes)."""
