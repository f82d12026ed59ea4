"""Context managers that make a measurement leave no trace on the model or the random state."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

MODES = ("probe_stats", "batch_stats", "eval", "train")
"""How the model behaves while it is measured (see :func:`set_mode`)."""
ENGINE_MODES = ("eval", "train", "batch_stats")
"""The modes the NTK engine takes: ``"probe_stats"`` is ``"eval"`` on a copy the capture prepares
(:func:`regimescope.capture.probe_statistics.with_probe_statistics`)."""


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` (naming the valid values) unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, MODES))}; received {mode!r}.")


def set_mode(model: nn.Module, mode: str) -> None:
    """Switch the module flags of ``model`` for a measurement in ``mode``.

    * ``"probe_stats"``: every module in eval mode, as ``"eval"``; the capture runs it on a copy of the model whose
      BatchNorm layers hold the probe's own batch statistics as running statistics, so examples stay independent.
    * ``"eval"``: every module in eval mode (BatchNorm normalises with its running statistics, dropout is off).
    * ``"train"``: every module in train mode (batch statistics, dropout on).
    * ``"batch_stats"``: eval mode, except the normalisation layers with running statistics (BatchNorm,
      InstanceNorm), which normalise with the statistics of the batch they see, as in training. Their running
      statistics updates must then land on copies of the buffers (``ModelCall`` holds such copies).

    Raises:
        ValueError: For another ``mode``.
    """
    check_mode(mode)
    model.train(mode == "train")
    if mode == "batch_stats":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.train()


def examples_interact(model: nn.Module) -> bool:
    """Whether, with the current flags, a layer of ``model`` mixes the examples of a batch (a BatchNorm that
    normalises with batch statistics: in train mode, or without running statistics)."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
        for m in model.modules()
    )


@contextlib.contextmanager
def preserved_modes(
    model: torch.nn.Module, train: bool | None = None, *, mode: str | None = None
) -> Iterator[None]:
    """Optionally switch every module to train/eval mode, and restore each module's own flag afterwards.

    Args:
        model: The module tree.
        train: ``True``/``False`` to switch during the block; ``None`` to leave the flags as they are.
        mode: A measurement mode of :func:`set_mode` (takes precedence over ``train``).
    """
    flags = [(module, module.training) for module in model.modules()]
    try:
        if mode is not None:
            set_mode(model, mode)
        elif train is not None:
            model.train(train)
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _cuda_devices(devices: list[torch.device]) -> list[int]:
    return sorted({d.index if d.index is not None else torch.cuda.current_device() for d in devices if d.type == "cuda"})


@contextlib.contextmanager
def preserved_rng(devices: list[torch.device] | None = None, seed: int | None = None) -> Iterator[None]:
    """Save the torch (CPU and given CUDA devices), numpy and ``random`` states; restore them afterwards.

    Args:
        devices: Devices whose generators are saved too (CUDA ones; CPU is always saved).
        seed: When given, seed torch with it inside the block, so random layers draw the same numbers
            in every pass of one measurement.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=_cuda_devices(devices or []), enabled=True):
        try:
            if seed is not None:
                torch.manual_seed(seed)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def no_autocast(device_type: str) -> Iterator[None]:
    """Disable autocast for ``device_type`` so kernels are computed in the requested dtype."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def shadow_copy(model: torch.nn.Module, *, share_parameters: bool = True) -> torch.nn.Module:
    """A copy of ``model`` whose forward (or ``torch.fx`` trace) cannot change ``model``.

    Buffers (BatchNorm statistics, ``spectral_norm``'s power-iteration vectors, a running-mean normaliser's mean),
    submodules and plain attributes are copied, so a forward in train mode updates the copy's state only. Parameters
    are shared by default (no memory for weights; nothing the monitor runs writes into a parameter, and ``fx``
    records in-place ops on them instead of running them); ``share_parameters=False`` copies them too, for work that
    overwrites the weights. Tensors computed from parameters and kept as attributes (what the legacy
    ``nn.utils.weight_norm``/``spectral_norm`` hooks store as ``weight``), which ``copy.deepcopy`` refuses, are
    carried over detached. Hooks are copied with their modules (the legacy norms are hooks); a hook closing over
    outside objects still reaches them.

    Args:
        model: The user's module (not changed; its training flags are kept on the copy).
        share_parameters: Whether the copy shares ``model``'s ``nn.Parameter`` objects (and hence their ``.grad``).

    Returns:
        The copy.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and not value.is_leaf:
                detached = value.detach()
                memo[id(value)] = detached if share_parameters else detached.clone()
        if share_parameters:
            for parameter in module._parameters.values():
                if parameter is not None:
                    memo[id(parameter)] = parameter
    return copy.deepcopy(model, memo)


def on_copied_buffers(model: torch.nn.Module) -> Callable[..., Any]:
    """``model`` as a callable that runs it through ``torch.func.functional_call`` on copies of its buffers.

    A forward that updates buffers (BatchNorm statistics in train mode, a call counter, ``spectral_norm``'s power
    iteration) updates the copies only; parameters are the model's own, untouched unless the forward writes into
    them in place. Cheaper than :func:`shadow_copy` (no module tree is copied), for a plain forward pass.
    """
    buffers = {name: b.clone() for name, b in model.named_buffers()}

    def call(*args: Any, **kwargs: Any) -> Any:
        return functional_call(model, buffers, args, kwargs)

    return call
