"""The demo's teacher-student task: deterministic, labelled by the teacher, probe held out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from regimescope.scenarios import PROBE_SIZE, make_probe, make_teacher, make_teacher_student


def test_targets_are_the_teacher_on_the_inputs() -> None:
    x, y = make_teacher_student(50, 6, seed=2)
    teacher = make_teacher(6, seed=2)
    assert x.shape == (50, 6) and y.shape == (50, 1)
    assert x.dtype == y.dtype == torch.float64
    torch.testing.assert_close(y, torch.relu(x @ teacher.directions.T).sum(1, keepdim=True))
    torch.testing.assert_close(teacher.directions.norm(dim=1), torch.ones(3, dtype=torch.float64))


def test_same_seed_same_data_other_seed_other_teacher() -> None:
    x1, y1 = make_teacher_student(20, 4, seed=0)
    x2, y2 = make_teacher_student(20, 4, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(make_teacher(4, seed=0).directions, make_teacher(4, seed=1).directions)


def test_probe_is_held_out_and_fixed() -> None:
    x_train, _ = make_teacher_student(64, 8, seed=0)
    x_probe, y_probe = make_probe(8, seed=0)
    assert x_probe.shape == (PROBE_SIZE, 8) and y_probe.shape == (PROBE_SIZE, 1)
    assert not torch.equal(x_probe[:64], x_train)
    again, _ = make_probe(8, seed=0)
    assert torch.equal(again, x_probe)
    torch.testing.assert_close(y_probe, make_teacher(8, seed=0)(x_probe))


def test_dtype_is_respected() -> None:
    x, y = make_probe(3, seed=0, n=5, dtype=torch.float32)
    assert x.dtype == y.dtype == torch.float32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_teacher_student(0, 4, seed=0), "`n_train`"),
        (lambda: make_teacher_student(10, 0, seed=0), "`d`"),
        (lambda: make_probe(4, seed=-1), "`seed`"),
        (lambda: make_probe(4, seed=0, n=0), "`n`"),
        (lambda: make_teacher(4, seed=0, units=0), "`units`"),
    ],
)
def test_invalid_sizes_are_rejected(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
