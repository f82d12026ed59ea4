"""How a capture computes: mode, dtype, NTK implementation, watched layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation
from regimescope.outputs import OutputFn


@dataclass
class CaptureConfig:
    """Settings of every capture of one monitor.

    Attributes:
        mode: ``"eval"`` or ``"train"`` behaviour of the model during measurement (see ``empirical_ntk``).
        dtype: Compute dtype of kernels and features (``None``: the parameters' dtype).
        output_fn: Maps the model's return value to the output tensor.
        implementation: NTK implementation.
        max_memory: NTK engine byte budget (``None``: default).
        feature_layers: Module names whose outputs are the monitored representations.
        pattern_layers: Names of ReLU-family modules whose on/off states are tracked.
    """

    mode: str = "eval"
    dtype: torch.dtype | None = None
    output_fn: OutputFn | None = None
    implementation: Implementation = DEFAULT_IMPLEMENTATION
    max_memory: int | None = None
    feature_layers: list[str] = field(default_factory=list)
    pattern_layers: list[str] = field(default_factory=list)

    def kernel_options(self) -> dict[str, Any]:
        """The keyword arguments of the per-layer kernel these settings ask for (``empirical_ntk``/``plan_ntk``)."""
        return dict(per_layer=True, output_fn=self.output_fn, mode=self.mode, dtype=self.dtype,
                    implementation=self.implementation, max_memory=self.max_memory)
