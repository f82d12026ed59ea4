"""Where an adapter's probe comes from: the user, or the run's own training data."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from regimescope.probe import Probe


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def resolve_probe(probe: Probe | Any | None, loader: Any, *, size: int, seed: int, device: torch.device) -> Probe:
    """The probe a monitor measures on, on ``device``.

    Args:
        probe: A :class:`Probe`, bare model inputs to wrap in one, or ``None`` to draw one from ``loader``.
        loader: The training ``DataLoader``; ``Probe.from_loader`` draws ``size`` examples from its dataset with a
            generator seeded by ``seed`` (the same examples on every rank and on resume) and collates them with
            the loader's ``collate_fn``, so inputs arrive exactly as in training.
        size: Number of examples drawn from ``loader``.
        seed: Seed of the draw.
        device: The model's device.

    Raises:
        ValueError: When there is neither a probe nor a single training loader to draw one from.
    """
    if probe is None:
        if loader is None or isinstance(loader, (list, tuple, dict)):
            raise ValueError(
                "No probe was given and the run has no single training DataLoader to draw one from (received "
                f"{type(loader).__name__}); pass `probe=regimescope.Probe(inputs, targets)` with a fixed batch of "
                "model inputs."
            )
        probe = Probe.from_loader(loader, size=size, seed=seed)
    elif not isinstance(probe, Probe):
        probe = Probe(probe)
    return probe.to(device)
