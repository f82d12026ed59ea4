"""Turning whatever a model returns into the ``(n, k)`` output matrix the NTK is defined on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

OutputFn = Callable[[Any], torch.Tensor]


def default_output(output: Any) -> torch.Tensor:
    """Pick the tensor the NTK is taken of from a model's return value.

    A tensor is used as is; a mapping (Hugging Face ``ModelOutput`` included) gives its ``"logits"``; a tuple or
    list gives its first element.

    Raises:
        TypeError: When none of these applies, with the fix (pass ``output_fn=``).
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if "logits" in output and isinstance(output["logits"], torch.Tensor):
            return output["logits"]
        raise TypeError(
            f"The model returned a mapping with keys {sorted(output)} and no 'logits' tensor. "
            "Pass `output_fn=lambda out: out['<key>']` to say which tensor the kernel is taken of."
        )
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"The model returned {type(output).__name__}, not a tensor. "
        "Pass `output_fn=` mapping the model's return value to the output tensor."
    )


def flat_outputs(output: Any, n: int, output_fn: OutputFn | None) -> torch.Tensor:
    """Apply ``output_fn`` (or :func:`default_output`) and flatten to ``(n, k)``.

    Raises:
        ValueError: When the selected tensor's first dimension is not the batch size ``n``.
    """
    tensor = (output_fn or default_output)(output)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"`output_fn` must return a tensor; it returned {type(tensor).__name__}.")
    if tensor.dim() == 0 or tensor.shape[0] != n:
        raise ValueError(
            f"The model output has shape {tuple(tensor.shape)}, but the batch has {n} examples; the NTK needs the "
            "batch dimension first. Pass `output_fn=` returning a tensor of shape (n, ...)."
        )
    return tensor.reshape(n, -1)
