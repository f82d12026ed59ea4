"""heatmap_rgb renders matrices as small RGB images with sensible colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.image import NON_FINITE_RGB, heatmap_rgb


def _brightness(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_shape_and_dtype() -> None:
    image = heatmap_rgb(np.random.default_rng(0).random((5, 7)))
    assert image.shape == (5, 7, 3)
    assert image.dtype == np.uint8


def test_downsampled_to_max_size_keeping_aspect() -> None:
    image = heatmap_rgb(np.ones((300, 150)), max_size=100)
    assert image.shape == (100, 50, 3)
    assert heatmap_rgb(np.ones((257, 10)), max_size=128).shape == (86, 4, 3)


def test_block_averaging() -> None:
    matrix = np.zeros((4, 4))
    matrix[:2, :2] = 1.0
    matrix[2:, 2:] = 0.5
    matrix[0, 2] = 1.0
    image = heatmap_rgb(matrix, max_size=2)
    expected = heatmap_rgb(np.array([[1.0, 0.25], [0.0, 0.5]]))
    np.testing.assert_array_equal(image, expected)


def test_sequential_map_runs_dark_to_bright() -> None:
    image = heatmap_rgb(np.linspace(0.0, 1.0, 64).reshape(8, 8))
    brightness = _brightness(image.reshape(-1, 3))
    assert np.all(np.diff(brightness) >= -1.0)
    assert brightness[-1] - brightness[0] > 150
    np.testing.assert_array_equal(image[0, 0], [68, 1, 84])
    np.testing.assert_array_equal(image[-1, -1], [253, 231, 37])


def test_both_signs_choose_the_diverging_map_with_white_zero() -> None:
    image = heatmap_rgb(np.array([[-2.0, 0.0, 2.0]]))
    negative, zero, positive = image[0].astype(int)
    assert negative[2] > negative[0]
    assert positive[0] > positive[2]
    assert zero.min() > 240
    np.testing.assert_array_equal(image, heatmap_rgb(torch.tensor([[-2.0, 0.0, 2.0]]), symmetric=True))


def test_symmetric_can_be_forced_either_way() -> None:
    positive = np.array([[0.0, 1.0]])
    assert heatmap_rgb(positive, symmetric=True)[0, 0].min() > 240
    both = np.array([[-1.0, 1.0]])
    np.testing.assert_array_equal(heatmap_rgb(both, symmetric=False)[0], [[68, 1, 84], [253, 231, 37]])


def test_constant_and_non_finite() -> None:
    assert len({tuple(p) for p in heatmap_rgb(np.full((3, 3), 4.0)).reshape(-1, 3)}) == 1
    image = heatmap_rgb(np.array([[np.nan, 1.0], [2.0, np.inf]]))
    assert tuple(image[0, 0]) == NON_FINITE_RGB
    assert tuple(image[1, 1]) == NON_FINITE_RGB
    assert tuple(image[0, 1]) != NON_FINITE_RGB


def test_tensor_input_matches_array_input() -> None:
    matrix = torch.randn(20, 20, dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(heatmap_rgb(matrix, max_size=7), heatmap_rgb(matrix.detach().numpy(), max_size=7))


@pytest.mark.parametrize("matrix", [np.zeros(4), np.zeros((2, 2, 2)), np.zeros((0, 3))])
def test_rejects_non_matrices(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2-D matrix"):
        heatmap_rgb(matrix)


def test_rejects_bad_max_size() -> None:
    with pytest.raises(ValueError, match="max_size"):
        heatmap_rgb(np.zeros((2, 2)), max_size=0)
