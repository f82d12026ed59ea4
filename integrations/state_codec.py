"""A monitor's state as one JSON-safe string, for frameworks that keep callback state in JSON."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch


def encode_state(state: dict[str, Any]) -> str:
    """``torch.save`` ``state`` to memory and return the bytes as base64 text (JSON-safe)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_state(text: str) -> dict[str, Any]:
    """Inverse of :func:`encode_state`; loads with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        ValueError: When ``text`` is not a state :func:`encode_state` wrote.
    """
    try:
        return torch.load(io.BytesIO(base64.b64decode(text, validate=True)), weights_only=True)
    except Exception as error:
        raise ValueError(
            f"The saved regimescope state could not be decoded ({type(error).__name__}: {error}); it should be the "
            "text RegimeTrainerCallback wrote into trainer_state.json. Resume from an unmodified checkpoint, or "
            "remove the callback's entry from `stateful_callbacks` to start the references afresh."
        ) from error
