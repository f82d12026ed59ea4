"""The minimal model f(x) = a w^T x of Kunin et al. 2024 ("Get rich quick"): the monitor against the exact solution.

For several layer balances delta = a^2 - |w|^2, trains the model by small-step gradient descent on whitened data with
a RegimeMonitor attached, and plots the kernel distance S(K_0, K_t), the kernel growth and the function the monitor
measured (markers) over the exact gradient-flow solution of theory.md section 4 (lines):

- delta = +4 (upstream: large a, small w): lazy, the kernel M = a^2 I + w w^T barely moves (S ~ delta^-4);
- delta = +1: in between;
- delta = 0 from a small initialisation: rich, the kernel grows by s / |beta_0| and turns;
- delta = -4 (downstream: small a, large w): lazy first along w, then a slow rotation (delayed rich).

Run:  python examples/minimal_model.py --out minimal_model.png   (add --quick for a 4x coarser step)
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _exact_plot import Trajectory, exact_kernel_at, train_with_monitor, trajectory
from _exact_plot import main as example_main
from torch import nn

from regimescope.exact import MinimalModelSolution

CASES = {
    # label: (a_0, |w_0|, largest rate a^2 + |w|^2 along the run)
    "delta = +4": (2.0, 0.1, 5.8),
    "delta = +1": (1.0, 0.1, 2.8),
    "delta = 0": (0.05, 0.05, 2.0),
    "delta = -4": (0.05, 2.0, 4.6),
}
HORIZON = 4.0
"""Gradient-flow time of every run."""
STEP = {"full": 2.5e-3, "quick": 1e-2}
"""``lr * largest rate``: gradient descent stays within ``O(lr)`` of gradient flow."""


def task(n: int = 16, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Whitened inputs ``X`` (``X^T X = I``) and Gaussian targets ``y``; ``beta* = X^T y``."""
    rng = np.random.default_rng(seed)
    x, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return x, rng.standard_normal(n)


def run(quick: bool = False) -> list[Trajectory]:
    """Train every case with the monitor and pair it with the exact solution."""
    x, y = task()
    beta_star = x.T @ y
    direction = np.random.default_rng(1).standard_normal(x.shape[1])
    direction *= np.sign(direction @ beta_star) / np.linalg.norm(direction)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)[:, None]
    trajectories = []
    for label, (a_0, w_norm, rate) in CASES.items():
        w_0 = w_norm * direction
        model = nn.Sequential(nn.Linear(len(w_0), 1, bias=False), nn.Linear(1, 1, bias=False)).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(w_0)[None])
            model[1].weight.fill_(a_0)
        lr = STEP["quick" if quick else "full"] / rate
        measured = train_with_monitor(model, inputs, targets, 1.0, lr, round(HORIZON / lr))
        solution = MinimalModelSolution(a_0, w_0, beta_star)
        trajectories.append(trajectory(label, measured, exact_kernel_at(solution, x), x @ beta_star, HORIZON))
    return trajectories


def main(argv: list[str] | None = None) -> list[Trajectory]:
    """Run the comparison, save the plot, print the largest measured-vs-exact gaps."""
    return example_main(
        argv,
        __doc__.splitlines()[0],
        default_out="minimal_model.png",
        run=run,
        title="Minimal model f = a w^T x: monitor (markers) vs exact gradient flow (lines)",
        label_width=12,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
