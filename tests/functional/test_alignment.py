"""kernel_alignment, target_matrix and center against the float64 formula of theory.md 5.4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regimescope.functional.alignment import (
    IGNORE_INDEX,
    TargetLayout,
    center,
    kernel_alignment,
    target_gram,
    target_layout,
    target_matrix,
)
from tests.reference import formulas as ref


def _labels(n: int, classes: int, seed: int) -> torch.Tensor:
    labels = torch.from_numpy(np.random.default_rng(seed).integers(0, classes, n))
    labels[:classes] = torch.arange(classes)  # every class present, so one-hot has `classes` columns
    return labels


@pytest.mark.parametrize(("n", "classes", "seed"), [(4, 2, 0), (10, 3, 1), (25, 5, 2), (25, 5, 3)])
def test_matches_reference_for_class_labels(n: int, classes: int, seed: int) -> None:
    k = torch.from_numpy(ref.random_psd(n, 4, seed))
    labels = _labels(n, classes, seed)
    expected = ref.kernel_alignment(k.numpy(), ref.one_hot(labels.numpy(), classes))
    assert float(kernel_alignment(k, labels)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("n", "outputs", "seed"), [(5, 1, 0), (12, 2, 1), (30, 4, 2)])
def test_matches_reference_for_float_targets(n: int, outputs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = torch.from_numpy(ref.random_psd(n, 6, seed))
    y = rng.standard_normal((n, outputs))
    expected = ref.kernel_alignment(k.numpy(), y)
    assert float(kernel_alignment(k, torch.from_numpy(y))) == pytest.approx(expected, rel=1e-10)
    assert float(kernel_alignment(k, torch.from_numpy(y), centered=False)) == pytest.approx(
        ref.kernel_alignment(k.numpy(), y, centered=False), rel=1e-10
    )


def test_one_dimensional_float_targets_are_one_column() -> None:
    k = torch.from_numpy(ref.random_psd(9, 3, 4))
    t = torch.from_numpy(np.random.default_rng(4).standard_normal(9))
    expected = ref.kernel_alignment(k.numpy(), t.numpy()[:, None])
    assert float(kernel_alignment(k, t)) == pytest.approx(expected, rel=1e-10)


def test_integer_labels_are_one_hot_and_float_labels_are_not() -> None:
    k = torch.from_numpy(ref.random_psd(12, 5, 6))
    labels = _labels(12, 3, 6)
    one_hot = torch.nn.functional.one_hot(labels, 3).double()
    from_labels, from_one_hot = float(kernel_alignment(k, labels)), float(kernel_alignment(k, one_hot))
    assert from_labels == pytest.approx(from_one_hot, rel=1e-12)
    as_values = float(kernel_alignment(k, labels.double()))
    assert as_values == pytest.approx(ref.kernel_alignment(k.numpy(), labels.double().numpy()[:, None]), rel=1e-10)
    assert abs(as_values - from_labels) > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_is_within_minus_one_and_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = torch.from_numpy(rng.standard_normal((8, 8)))  # not even PSD
    value = float(kernel_alignment(k + k.T, torch.from_numpy(rng.standard_normal((8, 2)))))
    assert -1.0 <= value <= 1.0


def test_is_one_for_the_target_gram_matrix_whatever_its_mean() -> None:
    labels = _labels(10, 3, 8)
    y = torch.nn.functional.one_hot(labels, 3).double()
    assert float(kernel_alignment(y @ y.T, labels)) == pytest.approx(1.0, abs=1e-12)
    assert float(kernel_alignment(y @ y.T + 5.0, labels)) == pytest.approx(1.0, abs=1e-12)
    f = torch.from_numpy(np.random.default_rng(8).standard_normal((10, 2)))
    assert float(kernel_alignment(f @ f.T + 2.0, f)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("c", [1e-4, 0.5, 3.0, 1e4])
def test_is_invariant_to_scaling_the_kernel(c: float) -> None:
    k = torch.from_numpy(ref.random_psd(11, 3, 9))
    labels = _labels(11, 4, 9)
    assert float(kernel_alignment(c * k, labels)) == pytest.approx(float(kernel_alignment(k, labels)), rel=1e-10)
    assert float(kernel_alignment(-c * k, labels)) == pytest.approx(-float(kernel_alignment(k, labels)), rel=1e-10)


def test_zero_kernel_gives_zero() -> None:
    assert float(kernel_alignment(torch.zeros(4, 4), torch.tensor([0, 1, 0, 1]))) == 0.0


def test_center_is_h_m_h() -> None:
    m = np.random.default_rng(3).standard_normal((6, 6))
    h = ref.centring(6)
    np.testing.assert_allclose(center(torch.from_numpy(m)).numpy(), h @ m @ h, atol=1e-12)


def test_target_matrix_shapes() -> None:
    assert target_matrix(torch.tensor([0, 2, 1])).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert target_matrix(torch.tensor([0, 1]), n_classes=4).shape == (2, 4)
    assert target_matrix(torch.tensor([0.5, 2.0])).tolist() == [[0.5], [2.0]]
    assert target_matrix(torch.zeros(3, 2, 2)).shape == (3, 4)
    assert target_matrix(torch.tensor([1, 0])).dtype == torch.float64


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        kernel_alignment(torch.zeros(3, 4), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"4 rows.*3 x 3"):
        kernel_alignment(torch.eye(3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="0-dimensional"):
        target_matrix(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"class labels of shape \(n,\).*target_gram"):
        target_matrix(torch.tensor([[3, 1], [0, 2]]))


def _token_one_hot(tokens: np.ndarray, vocabulary: int) -> np.ndarray:
    """The explicit ``(n, T V)`` one-hot matrix of ``(n, T)`` tokens, ignored positions all zero."""
    n, length = tokens.shape
    y = np.zeros((n, length, vocabulary))
    for i in range(n):
        for t in range(length):
            if tokens[i, t] != IGNORE_INDEX:
                y[i, t, tokens[i, t]] = 1.0
    return y.reshape(n, -1)


@pytest.mark.parametrize(("n", "length", "vocabulary", "seed"), [(6, 3, 4, 0), (10, 8, 5, 1), (16, 5, 40, 2)])
def test_token_targets_match_the_reference_with_the_explicit_one_hot_matrix(
    n: int, length: int, vocabulary: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocabulary, (n, length))
    tokens[rng.random((n, length)) < 0.2] = IGNORE_INDEX
    tokens[:, -1] = IGNORE_INDEX  # the last position of a next-token probe predicts nothing
    y = _token_one_hot(tokens, vocabulary)
    k = torch.from_numpy(ref.random_psd(n, 5, seed))
    as_tokens = torch.from_numpy(tokens)
    np.testing.assert_allclose(target_gram(as_tokens, "tokens").numpy(), y @ y.T, atol=0)
    for centered in (True, False):
        expected = ref.kernel_alignment(k.numpy(), y, centered=centered)
        value = kernel_alignment(k, as_tokens, centered, layout=TargetLayout.TOKENS)
        assert float(value) == pytest.approx(expected, rel=1e-10)


def test_the_token_gram_counts_the_positions_where_next_tokens_agree() -> None:
    tokens = torch.tensor([[1, 2, 3, -100], [1, 5, 3, -100], [-100, 2, 0, -100]])
    assert target_gram(tokens, "tokens").tolist() == [[3, 2, 1], [2, 3, 0], [1, 0, 2]]


def test_ignored_class_labels_are_zero_rows() -> None:
    labels = torch.tensor([0, IGNORE_INDEX, 2, 0])
    assert target_matrix(labels).tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]]
    k = torch.from_numpy(ref.random_psd(4, 3, 5))
    expected = ref.kernel_alignment(k.numpy(), target_matrix(labels).numpy())
    assert float(kernel_alignment(k, labels)) == pytest.approx(expected, rel=1e-10)


def test_integer_one_hot_rows_are_read_as_one_hot() -> None:
    labels = _labels(9, 3, 7)
    k = torch.from_numpy(ref.random_psd(9, 4, 7))
    one_hot = torch.nn.functional.one_hot(labels, 3)
    assert one_hot.dtype == torch.int64
    assert target_layout(one_hot) is TargetLayout.MATRIX
    assert target_layout(one_hot, output_shape=(3,)) is TargetLayout.MATRIX
    assert float(kernel_alignment(k, one_hot)) == pytest.approx(float(kernel_alignment(k, labels)), rel=1e-12)


def test_layouts_follow_the_output_shape() -> None:
    tokens = torch.randint(0, 5, (4, 6))
    assert target_layout(torch.tensor([0, 1, 1])) is TargetLayout.CLASSES
    assert target_layout(torch.randn(4, 2)) is TargetLayout.MATRIX
    assert target_layout(tokens + 2) is TargetLayout.TOKENS
    assert target_layout(tokens, output_shape=(6, 5)) is TargetLayout.TOKENS
    assert target_layout(tokens % 2, output_shape=(6, 5)) is TargetLayout.TOKENS  # binary tokens: the shape decides
    assert target_layout(tokens % 2, output_shape=(6,)) is TargetLayout.MATRIX
    with pytest.raises(ValueError, match=r"\(4, 6\) match the model's outputs \(4, 3\) in no layout.*next_token"):
        target_layout(tokens, output_shape=(3,))
