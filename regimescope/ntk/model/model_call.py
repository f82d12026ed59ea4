"""A side-effect-free functional view of the user's model in the compute dtype."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from regimescope import batch
from regimescope.guards import measured_parameter
from regimescope.ntk.model.attributes import preserved_attributes
from regimescope.ntk.model.output_map import OutputMap
from regimescope.outputs import OutputFn, flat_outputs


def _floating_dtypes(model: nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters() if p.is_floating_point()}


def compute_dtype(model: nn.Module, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype a measurement of ``model`` computes in: ``dtype`` when given, else the parameters' own.

    As in ``torch.func`` and neural-tangents, the computation follows the parameters: a float64 model gets float64
    kernels. Parameters in a lower precision than float32 (float16, bfloat16) are computed in float32, and mixed
    precisions in the widest one: the result is ``torch.promote_types`` of float32 and every floating parameter's
    dtype.

    Args:
        model: The model.
        dtype: An explicit compute dtype, or ``None`` for the parameters' one.
    """
    if dtype is not None:
        return dtype
    return functools.reduce(torch.promote_types, sorted(_floating_dtypes(model), key=str), torch.float32)


def cast_dtype(model: nn.Module, dtype: torch.dtype | None = None) -> torch.dtype | None:
    """The dtype a measurement casts ``model``'s floating parameters, buffers and inputs to: ``dtype`` when given,
    else :func:`compute_dtype` for a model whose floating parameters share one dtype, and ``None`` (no cast) for a
    model mixing dtypes, whose forward casts between its layers (``self.head(h.float())`` after float64 layers): each
    parameter then computes in its own dtype and the inputs stay as the probe holds them, as in training."""
    if dtype is None and len(_floating_dtypes(model)) > 1:
        return None
    return compute_dtype(model, dtype)


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def _least_precise(tensors: Iterable[torch.Tensor]) -> torch.dtype:
    """The floating dtype of ``tensors`` with the largest rounding error (float32 when none is floating)."""
    floating = [t.dtype for t in tensors if t.is_floating_point()]
    return max(floating, key=lambda d: torch.finfo(d).eps, default=torch.float32)


@dataclass
class ModelCall:
    """Calls ``model`` through ``torch.func.functional_call`` on detached copies of its state.

    Parameters are detached views (copies when the dtype changes, or when a forward writes into them in place, see
    :func:`~regimescope.guards.refusing_parameter_writes`) and every call starts from fresh copies of the buffers, so
    a forward that updates state (BatchNorm statistics in train mode, ``spectral_norm``'s power iteration, a
    running-mean normaliser) never reaches the model nor carries over from one pass to the next, and gradients never
    reach ``.grad``. The plain attributes a forward rebinds or fills (an RNN's cached ``_flat_weights``, a legacy
    ``weight_norm``'s ``weight``) are put back after every call, so no tensor of a measurement stays on the model.

    Attributes:
        model: The user's model.
        params: ``name -> detached parameter`` in the compute dtype (no ``requires_grad``).
        buffers: ``name -> copied buffer`` (floating ones in the compute dtype).
        dtype: Compute dtype (of the kernels).
        output_fn: Maps the model's return value to the output tensor.
        output_map: Output subset / random projection applied to the flattened outputs.
        cast: The dtype parameters, buffers and inputs are cast to; ``None`` for a model mixing dtypes, run as it is
            (:func:`cast_dtype`).
        precision: The least precise dtype the model computes in, whose rounding the engine's checks allow for.
    """

    model: nn.Module
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    dtype: torch.dtype
    output_fn: OutputFn | None = None
    output_map: OutputMap | None = None
    cast: torch.dtype | None = None
    precision: torch.dtype = torch.float32

    @classmethod
    def build(
        cls, model: nn.Module, dtype: torch.dtype | None, output_fn: OutputFn | None = None,
        output_map: OutputMap | None = None,
    ) -> ModelCall:
        """Snapshot ``model``'s parameters and buffers in ``dtype`` (``None``: the parameters' own, see
        :func:`compute_dtype` and :func:`cast_dtype`)."""
        cast = cast_dtype(model, dtype)
        params = {name: _cast(measured_parameter(p), cast) for name, p in model.named_parameters()}
        buffers = {name: _cast(b.detach(), cast).clone() for name, b in model.named_buffers()}
        return cls(model=model, params=params, buffers=buffers, dtype=compute_dtype(model, dtype),
                   output_fn=output_fn, output_map=output_map, cast=cast, precision=_least_precise(params.values()))

    @property
    def params_itemsize(self) -> int:
        """Bytes per element in the compute dtype."""
        return torch.empty((), dtype=self.dtype).element_size()

    def prepare(self, inputs: batch.Inputs) -> batch.Inputs:
        """Cast floating input leaves to :attr:`cast` (left as they are for a model mixing dtypes)."""
        return inputs if self.cast is None else batch.cast_floating(inputs, self.cast)

    def fresh_buffers(self) -> dict[str, torch.Tensor]:
        """New copies of the buffers, for a pass whose train-mode updates must not carry over."""
        return {name: b.clone() for name, b in self.buffers.items()}

    def raw(
        self,
        overrides: Mapping[str, torch.Tensor],
        inputs: batch.Inputs,
        buffers: Mapping[str, torch.Tensor] | None = None,
    ) -> object:
        """The model's return value with ``overrides`` replacing some parameters (and ``buffers``, default fresh
        copies, the buffers)."""
        state = {**self.params, **overrides, **(self.fresh_buffers() if buffers is None else buffers)}
        with preserved_attributes(self.model):
            if isinstance(inputs, torch.Tensor):
                return functional_call(self.model, state, (inputs,))
            if isinstance(inputs, Mapping):
                return functional_call(self.model, state, (), dict(inputs))
            return functional_call(self.model, state, tuple(inputs))

    def __call__(
        self,
        overrides: Mapping[str, torch.Tensor],
        inputs: batch.Inputs,
        buffers: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Outputs ``(n, k)`` with ``overrides`` replacing some parameters (prepared inputs), after the output map."""
        n = batch.batch_size(inputs)
        flat = flat_outputs(self.raw(overrides, inputs, buffers), n, self.output_fn)
        return flat if self.output_map is None else self.output_map(flat)
