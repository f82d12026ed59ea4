"""Phase diagrams of the lazy/rich regime with ``rs.sweep``: forecast from initialisation, then measured.

1. Kunin et al. 2024 ("Get rich quick"), a two-layer ReLU student on a teacher-student task: layer balance
   ``delta_k = a_k^2 - |w_k|^2 - b_k^2`` (the ``delta`` knob, at a fixed product of each unit's weights) against the
   initialisation scale (the ``init_scale`` knob). Expected shape: a small initialisation is rich when balanced or
   upstream (``delta > 0``), lazy when strongly downstream (``delta << 0``: the readout fits on fixed random features
   first); a large initialisation is lazy whatever the balance.
2. A small CNN on scikit-learn's digits (shipped with scikit-learn, no download): initialisation scale against the
   learning rate. A small initialisation is rich, a large one lazy; the learning rate sets how far a short run gets.

Each sweep writes ``<out>/<name>/phase_diagram.png`` and ``index.html``, and TensorBoard logs (with HParams
entries) under ``<out>/<name>/runs``. The same tasks run from the command line, e.g.

    regimescope sweep examples/phase_diagram.py:teacher_student --grid delta=-4,-1,0,1,4 --grid init_scale=0.05:2:5

Run:  python examples/phase_diagram.py --out phase_diagram   (CPU minutes; --quick: 3 x 2 and 2 x 2 grids, short runs)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

import regimescope as rs
from regimescope.scenarios import InitSpec, make_probe, make_student, make_teacher_student
from regimescope.sweep import SweepResult

DIM, WIDTH, SAMPLES = 8, 32, 128
"""Input dimension, student width and training examples of the teacher-student task."""
GRIDS = {
    "full": {
        "teacher_student": {
            "delta": [-4.0, -1.0, -0.25, 0.0, 0.25, 1.0, 4.0],
            "init_scale": [0.05, 0.15, 0.4, 1.0, 2.5],
        },
        "digits_cnn": {"init_scale": [0.1, 0.3, 1.0, 3.0], "lr": [0.003, 0.01, 0.03, 0.1]},
    },
    "quick": {
        "teacher_student": {"delta": [-4.0, 0.0, 4.0], "init_scale": [0.05, 2.0]},
        "digits_cnn": {"init_scale": [0.3, 3.0], "lr": [0.01, 0.1]},
    },
}
STEPS = {"full": {"teacher_student": 400, "digits_cnn": 200}, "quick": {"teacher_student": 60, "digits_cnn": 16}}


# ------------------------------------------------------------------------------------------- teacher-student
def student() -> nn.Module:
    """The student at unit scale, balanced, with a mirrored (zero) initial function; the knobs rescale it."""
    return make_student(InitSpec(scale=1.0, balance=0.0), DIM, WIDTH, seed=0)


def student_optimizer(model: nn.Module, init_scale: float = 1.0, delta: float = 0.0) -> torch.optim.Optimizer:
    """Plain gradient descent at a step the kernel allows: the kernel scales as ``tau^2`` (and ``|delta|``)."""
    return torch.optim.SGD(model.parameters(), lr=min(0.1, 0.01 / (init_scale**2 + abs(delta))))


def teacher_student() -> dict[str, Any]:
    """The teacher-student task as ``rs.sweep`` arguments (also a ``regimescope sweep`` target)."""
    x, y = make_teacher_student(SAMPLES, DIM, seed=0)
    probe_x, probe_y = make_probe(DIM, seed=0, n=48)
    return {
        "make_model": student,
        "make_optimizer": student_optimizer,
        "data": [(x, y)],
        "probe": rs.Probe(probe_x, probe_y),
        "steps": STEPS["full"]["teacher_student"],
    }


# ----------------------------------------------------------------------------------------------- digits CNN
class DigitsCNN(nn.Module):
    """``conv(1->8) - relu - pool - conv(8->16) - relu - pool - linear(64 -> 10)`` on 8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, 8, 8) -> (n, 10)`` logits."""
        return self.head(self.features(x).flatten(1))


def cnn_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """SGD with the grid's learning rate."""
    return torch.optim.SGD(model.parameters(), lr=lr)


def digits_cnn() -> dict[str, Any]:
    """The digits task as ``rs.sweep`` arguments: minibatches of 64 and a 64-image probe with labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(digits.target)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=generator)
    batches = [(images[i], labels[i]) for i in order[64:].split(64)]
    probe = rs.Probe(images[order[:64]], labels[order[:64]])
    return {
        "make_model": DigitsCNN,
        "make_optimizer": cnn_optimizer,
        "data": batches,
        "probe": probe,
        "steps": STEPS["full"]["digits_cnn"],
    }


TASKS = {"teacher_student": teacher_student, "digits_cnn": digits_cnn}


def run(name: str, out: Path, quick: bool) -> SweepResult:
    """Sweep one task's grid and write its diagrams under ``out / name``."""
    mode = "quick" if quick else "full"
    arguments = TASKS[name]()
    steps = STEPS[mode][name]
    every, early = (steps // 2, False) if quick else (steps // 8, True)  # quick: at the start, middle and end
    arguments.update(steps=steps, monitor_options={"schedule": rs.LogThenEvery(every, early=early)})
    if quick:  # and on a quarter of the probe
        probe = arguments["probe"]
        arguments["probe"] = rs.Probe(probe.inputs[: probe.size // 4], probe.targets[: probe.size // 4])
    make_model = arguments.pop("make_model")
    folder = out / name
    return rs.sweep(make_model, GRIDS[mode][name], logdir=folder / "runs", out=folder, **arguments)


def main(argv: list[str] | None = None) -> list[SweepResult]:
    """Run both sweeps and print where the diagrams are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("phase_diagram"), help="output folder")
    parser.add_argument("--quick", action="store_true", help="3 x 2 and 2 x 2 grids, short runs")
    parser.add_argument("--only", choices=sorted(TASKS), default=None, help="run one of the two sweeps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = []
    for name in [args.only] if args.only else list(TASKS):
        result = run(name, args.out, args.quick)
        print(f"{name}: {result.files['figure']} ({len(result.failed)} failed of {len(result.table)})")
        results.append(result)
    return results


if __name__ == "__main__":
    main()
