"""Scenario 6: the teacher-student corners of Kunin et al. 2024 (the demo's runs), read through the monitor.

Small balanced initialisation is rich (the kernel grows by orders of magnitude, turns and aligns with the task);
small upstream initialisation is rich through activation patterns, which flip fast while the large readout barely
moves; small downstream initialisation is lazy early (the readout fits on the first layer's fixed random features);
large or wide initialisations are lazy (kernel, patterns and task alignment stay put).
"""

from __future__ import annotations

import pytest

from regimescope.record import Record
from regimescope.scenarios import EARLY_FRACTION, Outcome, get
from tests.scenarios._outcomes import outcomes

DISTANCE = "regimescope/kernel/distance_from_init"
GROWTH = "regimescope/kernel/norm_ratio"
ALIGNMENT = "regimescope/kernel/target_alignment"
PATTERNS = "regimescope/activations/pattern_change/activation"
HIDDEN = "regimescope/weights/relative_change/hidden"
READOUT = "regimescope/weights/relative_change/readout"


def _records(name: str) -> tuple[Outcome, Record, Record, Record]:
    """The outcome, its first, early and last kernel records."""
    outcome = outcomes()[name]
    records = [r for r in outcome.history if DISTANCE in r.scalars]
    steps = get(name).build().steps
    early = [r for r in records if r.step <= EARLY_FRACTION * steps][-1]
    return outcome, records[0], early, records[-1]


@pytest.mark.slow
def test_small_balanced_init_grows_turns_and_aligns_the_kernel() -> None:
    outcome, first, _, last = _records("teacher/balanced")
    assert last.scalars[GROWTH] > 10 and last.scalars[DISTANCE] > 0.1
    assert last.scalars[ALIGNMENT] > first.scalars[ALIGNMENT] + 0.05
    assert outcome.label == "rich"


@pytest.mark.slow
def test_small_upstream_init_flips_patterns_fast_while_the_readout_barely_moves() -> None:
    """GRQ's rapid feature learning: large Hamming distance, small parameter distance."""
    outcome, _, early, last = _records("teacher/upstream")
    assert early.scalars[PATTERNS] > 0.3
    assert max(early.scalars[READOUT], last.scalars[READOUT]) < 0.01
    assert outcome.label == "rich"


@pytest.mark.slow
def test_small_downstream_init_fits_on_fixed_features_first() -> None:
    outcome, _, early, _ = _records("teacher/downstream")
    assert early.scalars[DISTANCE] < 1e-4 and early.scalars[PATTERNS] < 0.01
    assert early.scalars[HIDDEN] < 0.01 < 1 < early.scalars[READOUT]
    assert outcome.early_label == "lazy"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["teacher/large", "teacher/wide-ntk"])
def test_large_and_wide_inits_keep_kernel_patterns_and_alignment(name: str) -> None:
    outcome, first, _, last = _records(name)
    assert last.scalars[DISTANCE] < 1e-3 and last.scalars[PATTERNS] < 0.02
    assert abs(last.scalars[ALIGNMENT] - first.scalars[ALIGNMENT]) < 0.01
    assert outcome.label == "lazy"
