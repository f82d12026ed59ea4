"""The fixed batch every measurement of a run is taken on."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.functional.alignment import IGNORE_INDEX, TargetLayout, target_layout
from regimescope.guards import (
    ParameterWriteError,
    check_mode,
    preserved_modes,
    preserved_rng,
    refusing_parameter_writes,
)
from regimescope.ntk.model.model_call import ModelCall
from regimescope.outputs import OutputFn, default_output, flat_outputs

logger = logging.getLogger(__name__)

TARGET_KEYS = ("labels", "label", "targets", "target", "y")
"""Keys taken as targets when a loader yields dicts (Hugging Face style)."""


class Probe:
    """A fixed batch of inputs, and optionally targets, chosen once and kept for the whole run.

    Every kernel and representation comparison over time is made on the same probe, so its examples must not
    change: the tensors are detached and copied at construction (targets onto the inputs' device).

    Targets are read in one of the layouts of :class:`~regimescope.functional.alignment.TargetLayout`, decided
    against the model's outputs by :meth:`check` (the monitor calls it at ``attach()``): ``(n,)`` class labels,
    float targets or one-hot rows shaped like the outputs, or one class per output position (a language model's
    ``(n, T)`` next tokens for ``(n, T, V)`` logits). ``-100`` marks an example or position without a target.

    Args:
        inputs: Batch-first inputs: a tensor (``model(x)``), a tuple (``model(*x)``) or a dict (``model(**x)``).
        targets: Optional targets, for the target-alignment indicators (see above). The target of output
            position ``t`` is ``targets[:, t]``: for a model that shifts its labels inside (Hugging Face causal
            LMs), build the probe with :meth:`next_token`.

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
            targets = targets.detach().to(batch.tensor_leaves(inputs)[0].device, copy=True)
        self.inputs = batch.map_tensors(inputs, lambda t: t.detach().clone())
        self.targets = targets
        self.output_shape: tuple[int, ...] | None = None
        """Shape of one example's output (before flattening), known once :meth:`check` ran."""

    @property
    def size(self) -> int:
        """Number of examples ``n``."""
        return batch.batch_size(self.inputs)

    @property
    def target_layout(self) -> TargetLayout | None:
        """How the targets map to the outputs (checked against them once :meth:`check` ran); ``None`` without
        targets."""
        if self.targets is None:
            return None
        return target_layout(self.targets, self.output_shape)

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
        fixed draw too), with the output shape :meth:`check` found; the probe itself when ``size`` is its size.

        Raises:
            ValueError: When ``size`` is not between 2 and the probe's size.
        """
        if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= self.size:
            raise ValueError(f"A probe subset needs 2 to {self.size} examples; received {size!r}.")
        if size == self.size:
            return self
        targets = None if self.targets is None else self.targets[:size]
        subset = Probe(batch.select(self.inputs, slice(0, size)), targets)
        subset.output_shape = self.output_shape
        return subset

    @classmethod
    def next_token(cls, inputs: batch.Inputs, labels: torch.Tensor | None = None) -> Probe:
        """A language-model probe whose target at position ``t`` is the label at ``t + 1``.

        For models trained on next-token prediction from labels aligned with the inputs (Hugging Face causal
        LMs take ``labels = input_ids`` and shift them inside the model; a plain loop computes
        ``cross_entropy(logits[:, :-1], tokens[:, 1:])``): ``targets[:, t] = labels[:, t + 1]`` and the last
        position, which predicts nothing, gets ``-100``.

        Args:
            inputs: The model inputs: token ids ``(n, T)``, or a dict holding ``input_ids`` (and e.g.
                ``attention_mask``), or a tuple whose first item is the token ids.
            labels: ``(n, T)`` labels aligned with the inputs (``-100`` for ignored positions); default: the token
                ids.

        Raises:
            ValueError: When there are no ``(n, T)`` integer labels to shift.
        """
        if labels is None:
            if isinstance(inputs, Mapping):
                labels = inputs.get("input_ids")
            else:
                leaves = batch.tensor_leaves(inputs)
                labels = leaves[0] if leaves else None
        if not isinstance(labels, torch.Tensor) or labels.dim() != 2 or labels.is_floating_point():
            found = type(labels).__name__ if not isinstance(labels, torch.Tensor) else tuple(labels.shape)
            raise ValueError(
                f"Probe.next_token needs (n, T) integer labels (or token ids among the inputs); received {found}. "
                "Pass `labels=` with one token id per position."
            )
        shifted = torch.full_like(labels, IGNORE_INDEX)
        shifted[:, :-1] = labels[:, 1:]
        return cls(inputs, shifted)

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

    def check(
        self, model: nn.Module, output_fn: OutputFn | None = None, mode: str = "eval", dtype: torch.dtype | None = None
    ) -> int:
        """Run the model once on the probe and check the targets against its outputs; return the output count ``k``.

        The model runs as a measurement runs it: through ``torch.func.functional_call`` on copies of its buffers, in
        measurement ``mode`` (see :func:`regimescope.guards.set_mode`) and compute ``dtype`` (``None``: the
        parameters' own, see :class:`~regimescope.ntk.model.model_call.ModelCall`), without gradients, refusing
        writes into the parameters (:func:`~regimescope.guards.refusing_parameter_writes`: a forward that writes
        into a weight in place, as ``nn.Embedding(max_norm=...)`` does, is measured on a copy of it from then on).
        Nothing of the model changes, even when its forward updates state. The per-example output shape is kept in
        :attr:`output_shape`, and the targets' layout is decided against it.

        Raises:
            ValueError: For an unknown ``mode``; when the probe is on another device than the model, the model
                cannot run on it (the message shows the probe's shapes and the model's error), or the targets fit
                the outputs in no layout, hold token ids outside the vocabulary, or are not finite.
            ParameterWriteError: When the forward writes into a parameter in a way no copy can take (the message
                says how to change the model).
        """
        check_mode(mode)
        params = list(model.parameters())
        if params and params[0].device != self.device:
            raise ValueError(
                f"The probe is on {self.device} but the model is on {params[0].device}; pass "
                f"`probe.to('{params[0].device}')` or build the probe from tensors on the model's device."
            )
        shapes = batch.map_tensors(self.inputs, lambda t: tuple(t.shape))

        def run() -> Any:
            call = ModelCall.build(model, dtype)
            return call.raw({}, call.prepare(self.inputs))

        try:
            with preserved_modes(model, mode=mode), preserved_rng([self.device]), torch.no_grad():
                output = refusing_parameter_writes(model, run)
        except ParameterWriteError:
            raise
        except Exception as error:
            raise ValueError(
                f"The model could not run on the probe (input shapes {shapes}): {type(error).__name__}: {error}. "
                "The probe must hold inputs exactly as the training loop passes them to the model, batch first: a "
                f"tensor for model(x), a tuple for model(*args), a dict for model(**kwargs).{_cast_hint(dtype)}"
            ) from error
        flat = flat_outputs(output, self.size, output_fn)
        self.output_shape = tuple((output_fn or default_output)(output).shape[1:])
        self._check_targets()
        return flat.shape[1]

    def _check_targets(self) -> None:
        """Validate the targets against :attr:`output_shape` (see :meth:`check`)."""
        targets = self.targets
        if targets is None:
            return
        layout = self.target_layout
        if targets.is_floating_point() and not bool(torch.isfinite(targets).all()):
            raise ValueError("The probe's targets hold NaN or infinite values; pass finite targets.")
        if layout is not TargetLayout.TOKENS:
            return
        vocabulary = self.output_shape[-1]
        kept = targets[targets != IGNORE_INDEX]
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= vocabulary):
            raise ValueError(
                f"The probe's token targets range over [{int(kept.min())}, {int(kept.max())}], but the model has "
                f"{vocabulary} outputs per position; targets must be token ids below {vocabulary}, or -100 where a "
                "position has no target."
            )
        if any(t.shape == targets.shape and torch.equal(t, targets) for t in batch.tensor_leaves(self.inputs)):
            logger.warning(
                "regimescope: the probe's token targets equal its input ids, so each position's target is its own "
                "input token. For a causal language model (Hugging Face models shift `labels` inside), build the "
                "probe with `rs.Probe.next_token(inputs)`, whose target at position t is the token at t + 1."
            )


def _cast_hint(dtype: torch.dtype | None) -> str:
    """What an explicit compute dtype did to a model that failed on the probe (empty without one)."""
    if dtype is None:
        return ""
    return (
        f" It ran in dtype={dtype} as asked (parameters, buffers and inputs cast to it); a model whose forward casts "
        "between dtypes runs only with dtype=None, each layer in its own dtype."
    )


def _split(item: Any) -> tuple[batch.Inputs, torch.Tensor | None]:
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], torch.Tensor):
        return item[0], item[1]
    if isinstance(item, Mapping):
        inputs = {k: v for k, v in item.items() if k not in TARGET_KEYS}
        target = next((item[k] for k in TARGET_KEYS if k in item), None)
        return inputs, target
    return item, None
