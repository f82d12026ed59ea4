"""The synthetic teacher-student regression task of the demo (GRQ; theory.md section 6.6).

A teacher two-layer ReLU network with a few hidden units labels Gaussian inputs:

    y(x) = sum_j c_j relu(v_j . x),    x ~ N(0, I_d),    |v_j| = 1,    c_j = 1.

A student with many more hidden units fits it. From a small initialisation the student's units condense onto the
teacher's directions (rich: the NTK changes, mostly by growing); from a large one it fits with a nearly fixed
kernel (lazy). Training data and the probe are drawn from the same teacher with independent random streams, so
the probe is a held-out sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_DIM = 8
"""Input dimension ``d`` of the demo task."""

DEFAULT_TEACHER_UNITS = 3
"""Hidden units of the teacher."""

PROBE_SIZE = 96
"""Inputs in the demo probe (the monitor's kernels are ``PROBE_SIZE x PROBE_SIZE``)."""

_TEACHER_STREAM, _TRAIN_STREAM, _PROBE_STREAM = 0, 1, 2
_STREAMS = 3


@dataclass(frozen=True)
class Teacher:
    """A two-layer ReLU teacher ``y(x) = sum_j c_j relu(v_j . x)`` without biases.

    Attributes:
        directions: ``(units, d)`` unit-norm rows ``v_j``.
        readout: ``(units,)`` output weights ``c_j``.
    """

    directions: torch.Tensor
    readout: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Label inputs.

        Args:
            x: ``(n, d)`` inputs.

        Returns:
            ``(n, 1)`` targets ``sum_j c_j relu(v_j . x)``.
        """
        return torch.relu(x @ self.directions.T) @ self.readout[:, None]


def _generator(seed: int, stream: int) -> torch.Generator:
    """A generator for one of the task's independent random streams (teacher, training inputs, probe)."""
    if seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed}.")
    return torch.Generator().manual_seed(_STREAMS * seed + stream)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value}.")


def make_teacher(
    d: int, seed: int, *, units: int = DEFAULT_TEACHER_UNITS, dtype: torch.dtype = torch.float64
) -> Teacher:
    """Draw the teacher of the task: ``units`` directions uniform on the unit sphere, output weights 1.

    Args:
        d: Input dimension.
        seed: Task seed (non-negative); the same seed gives the same teacher.
        units: Number of teacher hidden units.
        dtype: Floating dtype of the teacher's weights.

    Returns:
        The teacher.

    Raises:
        ValueError: If ``d`` or ``units`` is not positive or ``seed`` is negative.
    """
    _check_positive("d", d)
    _check_positive("units", units)
    directions = torch.randn(units, d, generator=_generator(seed, _TEACHER_STREAM), dtype=dtype)
    directions = directions / directions.norm(dim=1, keepdim=True)
    return Teacher(directions=directions, readout=torch.ones(units, dtype=dtype))


def _labelled_sample(
    n: int, d: int, seed: int, stream: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    _check_positive("n", n)
    teacher = make_teacher(d, seed, dtype=dtype)
    x = torch.randn(n, d, generator=_generator(seed, stream), dtype=dtype)
    return x, teacher(x)


def make_teacher_student(
    n_train: int, d: int, seed: int, *, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set: ``n_train`` inputs ``x ~ N(0, I_d)`` labelled by the teacher of ``seed``.

    Args:
        n_train: Number of training examples.
        d: Input dimension.
        seed: Task seed (non-negative); fixes the teacher and the inputs.
        dtype: Floating dtype of the tensors.

    Returns:
        ``(x, y)`` with shapes ``(n_train, d)`` and ``(n_train, 1)``.

    Raises:
        ValueError: If a size is not positive or ``seed`` is negative.
    """
    _check_positive("n_train", n_train)
    return _labelled_sample(n_train, d, seed, _TRAIN_STREAM, dtype)


def make_probe(
    d: int, seed: int, *, n: int = PROBE_SIZE, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed probe of the task: ``n`` held-out inputs from the same teacher, with their targets.

    The probe is drawn from a random stream of its own, so it is the same whatever the training-set size.

    Args:
        d: Input dimension.
        seed: Task seed (non-negative), the same as the training set's.
        n: Number of probe inputs.
        dtype: Floating dtype of the tensors.

    Returns:
        ``(x, y)`` with shapes ``(n, d)`` and ``(n, 1)``.

    Raises:
        ValueError: If a size is not positive or ``seed`` is negative.
    """
    return _labelled_sample(n, d, seed, _PROBE_STREAM, dtype)
