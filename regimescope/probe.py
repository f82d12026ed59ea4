"""The fixed batch every measurement of a run is taken on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.guards import on_copied_buffers, preserved_modes, preserved_rng
from regimescope.outputs import OutputFn, flat_outputs

TARGET_KEYS = ("labels", "label", "targets", "target", "y")
"""Keys taken as targets when a loader yields dicts (Hugging Face style)."""


class Probe:
    """A fixed batch of inputs, and optionally targets, chosen once and kept for the whole run.

    Every kernel and representation comparison over time is made on the same probe, so its examples must not
    change: the tensors are detached and copied at construction.

    Args:
        inputs: Batch-first inputs: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict (``model(**x)``).
        targets: Optional ``(n,)`` class labels or ``(n, ...)`` float targets, for the target-alignment
            indicators.

    Raises:
        ValueError: When inputs hold no tensor, disagree on the batch size, or targets have another batch size.
    """

    def __init__(self, inputs: batch.Inputs, targets: torch.Tensor | None = None) -> None:
        n = batch.batch_size(inputs)
        if n < 2:
            raise ValueError(
                f"A probe needs at least 2 examples to compare kernels and representations; received {n}. "
                "Pass a larger batch (64 is a good default)."
            )
        if targets is not None:
            if not isinstance(targets, torch.Tensor):
                raise TypeError(f"`targets` must be a tensor; received {type(targets).__name__}.")
            if targets.dim() == 0 or targets.shape[0] != n:
                raise ValueError(
                    f"`targets` must have the probe's {n} examples first; received shape {tuple(targets.shape)}."
                )
            targets = targets.detach().clone()
        self.inputs = batch.map_tensors(inputs, lambda t: t.detach().clone())
        self.targets = targets

    @property
    def size(self) -> int:
        """Number of examples ``n``."""
        return batch.batch_size(self.inputs)

    @property
    def device(self) -> torch.device:
        """Device of the first input tensor."""
        return batch.tensor_leaves(self.inputs)[0].device

    def to(self, device: torch.device | str) -> Probe:
        """A copy on ``device``."""
        targets = None if self.targets is None else self.targets.to(device)
        return Probe(batch.to_device(self.inputs, torch.device(device)), targets)

    def subset(self, size: int) -> Probe:
        """The probe of the first ``size`` examples (the probe is already a fixed draw, so its first examples are a
        fixed draw too); the probe itself when ``size`` is its size.

        Raises:
            ValueError: When ``size`` is not between 2 and the probe's size.
        """
        if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= self.size:
            raise ValueError(f"A probe subset needs 2 to {self.size} examples; received {size!r}.")
        if size == self.size:
            return self
        targets = None if self.targets is None else self.targets[:size]
        return Probe(batch.select(self.inputs, slice(0, size)), targets)

    @classmethod
    def from_loader(cls, loader: Any, size: int = 64, seed: int = 0) -> Probe:
        """Draw a probe of ``size`` examples from a ``DataLoader``, deterministically.

        When the loader has a map-style dataset, ``size`` indices are drawn without replacement by a generator
        seeded with ``seed`` and collated with the loader's ``collate_fn``; otherwise the first batches are taken
        in order. A batch that is a ``(inputs, targets)`` pair, or a dict with a ``labels``-like key, gives
        targets too.

        Raises:
            ValueError: When the loader yields fewer than 2 examples.
        """
        dataset = getattr(loader, "dataset", None)
        collate = getattr(loader, "collate_fn", None)
        if dataset is not None and collate is not None and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
            generator = torch.Generator().manual_seed(seed)
            count = min(size, len(dataset))
            indices = torch.randperm(len(dataset), generator=generator)[:count].tolist()
            return cls(*_split(collate([dataset[i] for i in indices])))
        parts, targets, taken = [], [], 0
        for item in loader:
            inputs, target = _split(item)
            parts.append(inputs)
            targets.append(target)
            taken += batch.batch_size(inputs)
            if taken >= size:
                break
        if not parts:
            raise ValueError("The loader yielded no batch; a probe needs at least 2 examples.")
        inputs = batch.select(batch.concatenate(parts), slice(0, size))
        target = None if any(t is None for t in targets) else torch.cat(targets)[:size]
        return cls(inputs, target)

    def check(self, model: nn.Module, output_fn: OutputFn | None = None) -> int:
        """Run the model once on the probe (eval mode, on copies of its buffers) and return the output count ``k``.

        Raises:
            ValueError: When the probe is on another device than the model, or the model cannot run on it; the
                message shows the probe's shapes and the model's error.
        """
        params = list(model.parameters())
        if params and params[0].device != self.device:
            raise ValueError(
                f"The probe is on {self.device} but the model is on {params[0].device}; pass "
                f"`probe.to('{params[0].device}')` or build the probe from tensors on the model's device."
            )
        shapes = batch.map_tensors(self.inputs, lambda t: tuple(t.shape))
        try:
            with preserved_modes(model, train=False), preserved_rng([self.device]), torch.no_grad():
                output = batch.call_model(on_copied_buffers(model), self.inputs)
        except Exception as error:
            raise ValueError(
                f"The model could not run on the probe (input shapes {shapes}): {type(error).__name__}: {error}. "
                "The probe must hold inputs exactly as the training loop passes them to the model, batch first: a "
                "tensor for model(x), a tuple for model(*args), a dict for model(**kwargs)."
            ) from error
        return flat_outputs(output, self.size, output_fn).shape[1]


def _split(item: Any) -> tuple[batch.Inputs, torch.Tensor | None]:
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], torch.Tensor):
        return item[0], item[1]
    if isinstance(item, Mapping):
        inputs = {k: v for k, v in item.items() if k not in TARGET_KEYS}
        target = next((item[k] for k in TARGET_KEYS if k in item), None)
        return inputs, target
    return item, None
