"""Heatmap images of matrices (e.g. NTK blocks) for TensorBoard, with built-in colour maps and no matplotlib."""

from __future__ import annotations

import math

import numpy as np
import torch

_SEQUENTIAL_ANCHORS = np.array(
    [
        [68, 1, 84],
        [70, 50, 126],
        [54, 92, 141],
        [39, 127, 142],
        [31, 161, 135],
        [74, 193, 109],
        [160, 218, 57],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
"""Eight evenly spaced samples of viridis (dark purple to yellow): perceptually uniform, colour-blind safe."""

_DIVERGING_ANCHORS = np.array(
    [
        [33, 102, 172],
        [67, 147, 195],
        [146, 197, 222],
        [209, 229, 240],
        [247, 247, 247],
        [253, 219, 199],
        [244, 165, 130],
        [214, 96, 77],
        [178, 24, 43],
    ],
    dtype=np.float64,
)
"""ColorBrewer RdBu reversed: blue for negative, near-white for zero, red for positive."""

NON_FINITE_RGB = (128, 128, 128)
"""Colour of pixels whose whole block is NaN or infinite."""


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks (the last ones may be smaller), ignoring non-finite entries.

    A block with no finite entry becomes NaN.
    """
    finite = np.isfinite(values)
    sums = np.where(finite, values, 0.0)
    counts = finite.astype(np.float64)
    rows = np.arange(0, values.shape[0], factor)
    cols = np.arange(0, values.shape[1], factor)
    sums = np.add.reduceat(np.add.reduceat(sums, rows, axis=0), cols, axis=1)
    counts = np.add.reduceat(np.add.reduceat(counts, rows, axis=0), cols, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan)


def _colourise(positions: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Map positions in [0, 1] (NaN allowed) to RGB by linear interpolation between ``anchors``."""
    grid = np.linspace(0.0, 1.0, len(anchors))
    flat = np.clip(np.nan_to_num(positions.reshape(-1), nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.interp(flat, grid, anchors[:, channel]) for channel in range(3)], axis=-1)
    rgb = rgb.reshape(*positions.shape, 3)
    rgb[np.isnan(positions)] = NON_FINITE_RGB
    return np.round(rgb).astype(np.uint8)


def heatmap_rgb(
    matrix: np.ndarray | torch.Tensor,
    *,
    max_size: int = 128,
    symmetric: bool | None = None,
) -> np.ndarray:
    """Render a matrix as an RGB heatmap image.

    The matrix is first shrunk by averaging square blocks of ``f x f`` entries, with
    ``f = ceil(max(rows, cols) / max_size)``, so neither side exceeds ``max_size`` and the aspect ratio is
    kept. Values then go through one of two built-in colour maps:

    - sequential (viridis-like), spanning ``[min, max]``: dark purple is low, yellow is high;
    - diverging (blue, white, red), spanning ``[-m, m]`` with ``m = max |value|``: white is zero.

    Non-finite entries are ignored by the averaging; a block with none finite is grey.

    Args:
        matrix: A 2-D array or tensor (any float or integer dtype, any device).
        max_size: Largest number of pixels on either side of the image.
        symmetric: ``True`` for the diverging map, ``False`` for the sequential one, ``None`` to choose the
            diverging map exactly when the (finite) values have both signs.

    Returns:
        A ``(H, W, 3)`` uint8 array with ``H, W <= max_size``, ready for ``Record.images``.

    Raises:
        ValueError: If ``matrix`` is not 2-D or is empty, or if ``max_size`` is smaller than 1.
    """
    if isinstance(matrix, torch.Tensor):
        values = matrix.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"heatmap_rgb expects a non-empty 2-D matrix, received shape {tuple(values.shape)}; "
            "for a full (n, n, k, k) kernel pass a 2-D view such as kernel.sum(dim=(2, 3))."
        )
    if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
        raise ValueError(f"max_size must be a positive int number of pixels, received {max_size!r}.")
    factor = math.ceil(max(values.shape) / max_size)
    if factor > 1:
        values = _block_mean(values, factor)
    else:
        values = np.where(np.isfinite(values), values, np.nan)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if symmetric is None:
        symmetric = low < 0.0 < high
    if symmetric:
        magnitude = max(abs(low), abs(high))
        positions = 0.5 + 0.5 * values / magnitude if magnitude > 0 else np.where(np.isnan(values), np.nan, 0.5)
        return _colourise(positions, _DIVERGING_ANCHORS)
    span = high - low
    positions = (values - low) / span if span > 0 else np.where(np.isnan(values), np.nan, 0.0)
    return _colourise(positions, _SEQUENTIAL_ANCHORS)
