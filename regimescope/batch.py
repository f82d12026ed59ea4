"""Helpers for model inputs given as a tensor, a tuple of positional arguments or a dict of keyword arguments.

Every tensor leaf carries the batch dimension first. A tensor is called as ``model(x)``, a tuple as
``model(*x)`` and a dict as ``model(**x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import torch

Inputs = Union[torch.Tensor, tuple, list, Mapping]


def map_tensors(inputs: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor leaf of a nested tuple/list/dict, keeping the structure."""
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, Mapping):
        return {key: map_tensors(value, fn) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(map_tensors(value, fn) for value in inputs)
    return inputs


def tensor_leaves(inputs: Any) -> list[torch.Tensor]:
    """All tensor leaves of a nested tuple/list/dict, in order."""
    leaves: list[torch.Tensor] = []
    map_tensors(inputs, lambda t: leaves.append(t) or t)
    return leaves


def batch_size(inputs: Inputs) -> int:
    """The shared leading dimension of every tensor leaf.

    Raises:
        ValueError: When there is no tensor, a tensor is 0-dimensional, or leaves disagree on the batch size.
    """
    leaves = tensor_leaves(inputs)
    if not leaves:
        raise ValueError(
            f"Expected model inputs holding at least one tensor; received {type(inputs).__name__} with none. "
            "Pass a tensor, a tuple of tensors (positional arguments) or a dict of tensors (keyword arguments)."
        )
    sizes = {tuple(t.shape[:1]) for t in leaves}
    if () in sizes:
        raise ValueError(
            "Every input tensor needs a batch dimension first; received a 0-dimensional tensor. "
            "Add the batch dimension, e.g. `x.unsqueeze(0)`."
        )
    if len(sizes) != 1:
        found = sorted(s[0] for s in sizes)
        raise ValueError(
            f"All input tensors must share the batch size (first dimension); received sizes {found}. "
            "Slice every input to the same examples."
        )
    return leaves[0].shape[0]


def select(inputs: Inputs, index: slice | torch.Tensor) -> Inputs:
    """The examples ``index`` of every tensor leaf."""
    return map_tensors(inputs, lambda t: t[index])


def concatenate(parts: Sequence[Inputs]) -> Inputs:
    """Concatenate several input structures of identical layout along the batch dimension."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(parts))
    if isinstance(first, Mapping):
        return {key: concatenate([p[key] for p in parts]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(concatenate([p[i] for p in parts]) for i in range(len(first)))
    return first


def cast_floating(inputs: Inputs, dtype: torch.dtype) -> Inputs:
    """Cast floating-point leaves to ``dtype``; integer leaves (token ids, labels) stay as they are."""
    return map_tensors(inputs, lambda t: t.to(dtype) if t.is_floating_point() else t)


def to_device(inputs: Inputs, device: torch.device) -> Inputs:
    """Move every tensor leaf to ``device``."""
    return map_tensors(inputs, lambda t: t.to(device))


def call_model(model: Callable[..., Any], inputs: Inputs) -> Any:
    """Call ``model`` with ``inputs`` following the tensor / tuple / dict convention of this module."""
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    raise TypeError(
        f"Model inputs must be a tensor, a tuple/list of positional arguments or a dict of keyword arguments; "
        f"received {type(inputs).__name__}."
    )
