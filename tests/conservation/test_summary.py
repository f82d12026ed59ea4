"""One line about many pairs: counts by cause, a few names, the rest counted together."""

from __future__ import annotations

from regimescope.conservation.pairs import Break
from regimescope.conservation.summary import cause_label, count_summary


def test_causes_make_one_sorted_label() -> None:
    assert cause_label({Break.RESIDUAL, Break.FAN_OUT}) == "fan-out + residual"
    assert cause_label(()) == "other"


def test_most_frequent_first_with_a_few_names_and_the_rest_counted() -> None:
    labelled = [("norm", "a"), ("norm", "b"), ("norm", "c"), ("tied", "d")] + [(f"k{i}", f"p{i}") for i in range(4)]
    assert count_summary(labelled, examples=2, labels=3) == (
        "3 norm (a, b, ...), 1 k0 (p0), 1 k1 (p1), and 3 more of 3 other kinds"
    )
    assert count_summary([]) == ""
