"""The target residual the lazy solution has to fit."""

from __future__ import annotations

import torch

from regimescope.forecast import target_residual

OUTPUTS = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.0, 1.0]], dtype=torch.float64)


def test_regression_residual_is_targets_minus_outputs() -> None:
    targets = torch.ones(2, 3)
    torch.testing.assert_close(target_residual(OUTPUTS, targets), targets.double() - OUTPUTS)


def test_class_labels_give_the_cross_entropy_direction() -> None:
    labels = torch.tensor([2, 0])
    expected = torch.nn.functional.one_hot(labels, 3).double() - torch.softmax(OUTPUTS, dim=1)
    torch.testing.assert_close(target_residual(OUTPUTS, labels), expected)


def test_no_matching_targets_give_none() -> None:
    assert target_residual(OUTPUTS, None) is None
    assert target_residual(OUTPUTS, torch.ones(2, 2)) is None
    assert target_residual(OUTPUTS, torch.tensor([0, 3])) is None
    assert target_residual(OUTPUTS[:, :1], torch.tensor([0, 1])) is None
