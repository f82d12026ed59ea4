"""What one capture pass measured on the probe at one step."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from regimescope.functional.weight_change import SquaredChange, squared_change


@dataclass
class Snapshot:
    """Measurements of the model on the probe at one training step.

    Tensors are detached, on CPU, in the capture dtype. Fields a capture was not asked for stay empty.

    Attributes:
        step: Global training step.
        weights: ``parameter name -> detached copy`` of every trainable parameter.
        outputs: Model outputs on the probe, ``(n, k)``.
        features: ``layer name -> (n, d)`` flattened hidden representations.
        activation_patterns: ``module name -> (n, units)`` boolean on/off states of ReLU-family modules.
        layer_kernels: ``layer name -> (n, n)`` trace-NTK block; their sum is the whole kernel.
        layer_kernel_halves: With a random output projection of ``m >= 2`` combinations, ``layer name -> (2, n, n)``:
            the block estimated from the even and from the odd combinations alone (each unbiased, their mean is the
            block), whose spread gives the projection's own noise. Empty otherwise.
        normalization: ``BatchNorm layer name -> {"running_mean", "running_var", "batch_mean", "batch_var",
            "eps"}``: the layer's running statistics and the probe's per-channel mean and (biased) variance at its
            input, float64.
    """

    step: int
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    outputs: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    activation_patterns: dict[str, torch.Tensor] = field(default_factory=dict)
    layer_kernels: dict[str, torch.Tensor] = field(default_factory=dict)
    layer_kernel_halves: dict[str, torch.Tensor] = field(default_factory=dict)

    @functools.cached_property
    def kernel_halves(self) -> torch.Tensor | None:
        """``(2, n, n)``: the whole kernel estimated from each half of the output combinations (``None`` without)."""
        if not self.layer_kernel_halves:
            return None
        return torch.stack(list(self.layer_kernel_halves.values())).sum(0)
    normalization: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    _change: tuple[Snapshot, SquaredChange] | None = field(default=None, init=False, repr=False, compare=False)

    def squared_change(self, reference: Snapshot) -> SquaredChange:
        """``parameter name -> (|W_t - W_0|_F^2, |W_0|_F^2)`` from ``reference``'s weights to these
        (:func:`~regimescope.functional.weight_change.squared_change`), computed once per reference: every
        weight-change indicator pools it over its own groups of parameters."""
        if self._change is None or self._change[0] is not reference:
            self._change = (reference, squared_change(self.weights, reference.weights))
        return self._change[1]

    @functools.cached_property
    def kernel(self) -> torch.Tensor | None:
        """The whole trace NTK ``K = sum_l K_l`` (``None`` when no kernel was captured).

        Summed once and cached: every kernel indicator reads it, and a snapshot is not changed after capture.
        """
        if not self.layer_kernels:
            return None
        return torch.stack(list(self.layer_kernels.values())).sum(0)

    def to_state(self) -> dict:
        """A ``torch.save``-able dict (for monitor checkpoints)."""
        return {
            "step": self.step,
            "weights": self.weights,
            "outputs": self.outputs,
            "features": self.features,
            "activation_patterns": self.activation_patterns,
            "layer_kernels": self.layer_kernels,
            "layer_kernel_halves": self.layer_kernel_halves,
            "normalization": self.normalization,
        }

    @classmethod
    def from_state(cls, state: dict) -> Snapshot:
        """Inverse of :meth:`to_state`."""
        return cls(**state)
