"""Labels from scores, with hysteresis."""

from __future__ import annotations

import pytest

from regimescope.verdict import LABELS, Verdict, next_label, raw_label
from regimescope.verdict.labeler import LAZY_BELOW, MARGIN, RICH_ABOVE


@pytest.mark.parametrize(("score", "label"), [(0.0, "lazy"), (0.34, "lazy"), (0.5, "transitional"), (0.66, "rich")])
def test_raw_label(score: float, label: str) -> None:
    assert raw_label(score) == label


def test_a_label_is_left_only_past_its_boundary_by_the_margin() -> None:
    assert next_label("lazy", LAZY_BELOW + MARGIN / 2) == "lazy"
    assert next_label("lazy", LAZY_BELOW + 2 * MARGIN) == "transitional"
    assert next_label("rich", RICH_ABOVE - MARGIN / 2) == "rich"
    assert next_label("rich", LAZY_BELOW - MARGIN) == "lazy"
    assert next_label("transitional", LAZY_BELOW - MARGIN / 2) == "transitional"
    assert next_label("transitional", RICH_ABOVE + 2 * MARGIN) == "rich"
    assert next_label(None, 0.5) == "transitional"


def test_noise_around_a_boundary_does_not_flip_the_label() -> None:
    label = None
    labels = []
    for score in (0.30, 0.37, 0.33, 0.38, 0.34, 0.39):
        label = next_label(label, score)
        labels.append(label)
    assert labels == ["lazy"] * 6


def test_label_index_is_the_logged_value() -> None:
    assert [Verdict(0, 0.0, name).label_index for name in LABELS] == [0, 1, 2]
