"""Context managers that make a measurement leave no trace on the model or the random state."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def preserved_modes(model: torch.nn.Module, train: bool | None = None) -> Iterator[None]:
    """Optionally switch every module to train/eval mode, and restore each module's own flag afterwards.

    Args:
        model: The module tree.
        train: ``True``/``False`` to switch during the block; ``None`` to leave the flags as they are.
    """
    flags = [(module, module.training) for module in model.modules()]
    try:
        if train is not None:
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
