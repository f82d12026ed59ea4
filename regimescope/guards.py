"""Context managers that make a measurement leave no trace on the model or the random state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

MODES = ("eval", "train", "batch_stats")
"""How modules behave while the model is measured (see :func:`set_mode`)."""


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` (naming the valid values) unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, MODES))}; received {mode!r}.")


def set_mode(model: nn.Module, mode: str) -> None:
    """Switch the module flags of ``model`` for a measurement in ``mode``.

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
