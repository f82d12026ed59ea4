"""The demo's student: a two-layer ReLU network with optional input and output multipliers."""

from __future__ import annotations

import torch
from torch import nn


class TwoLayerReLU(nn.Module):
    """Two-layer ReLU network with one output.

        f(x) = c_out * sum_k a_k relu(c_in * w_k . x + b_k)

    ``w_k, b_k`` are row ``k`` of ``hidden`` (weight and bias), ``a_k`` is column ``k`` of ``readout`` (no output
    bias, so every parameter belongs to a hidden unit). With ``c_in = c_out = 1`` this is the standard
    parametrisation; ``c_in = d^{-1/2}``, ``c_out = m^{-1/2}`` is the NTK parametrisation (theory.md section 6.3).
    The multipliers are constants, so the per-unit balance ``delta_k = a_k^2 - |w_k|^2 - b_k^2`` of the raw
    parameters is conserved under gradient flow in both parametrisations.

    Attributes:
        hidden: ``Linear(d, width)``: incoming weights ``w_k`` and biases ``b_k``.
        activation: The ReLU.
        readout: ``Linear(width, 1, bias=False)``: outgoing weights ``a_k``.
        input_scale: ``c_in``.
        output_scale: ``c_out``.
    """

    def __init__(
        self,
        d: int,
        width: int,
        *,
        bias: bool = True,
        input_scale: float = 1.0,
        output_scale: float = 1.0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        """Build the layers (PyTorch's default initialisation; see ``make_student`` for the demo's inits).

        Args:
            d: Input dimension.
            width: Number of hidden units ``m``.
            bias: Whether the hidden layer has biases ``b_k``.
            input_scale: Multiplier ``c_in`` of the inputs.
            output_scale: Multiplier ``c_out`` of the output.
            dtype: Floating dtype of the parameters.
        """
        super().__init__()
        self.hidden = nn.Linear(d, width, bias=bias, dtype=dtype)
        self.activation = nn.ReLU()
        self.readout = nn.Linear(width, 1, bias=False, dtype=dtype)
        self.input_scale = input_scale
        self.output_scale = output_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate ``f`` on a batch.

        Args:
            x: ``(n, d)`` inputs.

        Returns:
            ``(n, 1)`` outputs.
        """
        return self.output_scale * self.readout(self.activation(self.hidden(self.input_scale * x)))

    def extra_repr(self) -> str:
        """Show the multipliers next to the layers."""
        return f"input_scale={self.input_scale:.4g}, output_scale={self.output_scale:.4g}"
