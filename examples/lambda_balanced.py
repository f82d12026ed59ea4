"""Lambda-balanced two-layer linear networks (Dominé et al. 2025, "From lazy to rich"): the monitor against the exact
solution.

For several lambda (W_2^T W_2 - W_1 W_1^T = lambda I), trains f(x) = W_2 W_1 x by small-step gradient descent on
whitened inputs with a RegimeMonitor attached, and plots the kernel distance S(K_0, K_t), the kernel growth and the
function the monitor measured (markers) over the closed-form solution of theory.md section 4 (lines):

- |lambda| large (+8 upstream): lazy, the kernel stays put (S ~ lambda^-4);
- lambda = +2 and -4 (downstream): in between (the kernel depends on |lambda| only: -4 behaves as +4);
- lambda = 0 from a small initialisation: rich, the kernel grows by orders of magnitude and turns.

Run:  python examples/lambda_balanced.py --out lambda_balanced.png   (add --quick for a 4x coarser step)
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _exact_plot import Trajectory, exact_kernel_at, train_with_monitor, trajectory
from _exact_plot import main as example_main
from torch import nn

from regimescope.exact import LambdaBalancedSolution, lambda_balanced_init

DIM, SAMPLES = 3, 12
CASES = {
    # label: (lambda, product singular values)
    "lambda = +8": (8.0, 0.5),
    "lambda = +2": (2.0, 0.5),
    "lambda = 0": (0.0, 0.01),
    "lambda = -4": (-4.0, 0.5),
}
STEP = {"full": 2.5e-3, "quick": 1e-2}
"""``lr * largest rate``: gradient descent stays within ``O(lr)`` of gradient flow."""


def task(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Whitened inputs (rows, ``X^T X / P = I``) and targets ``Y = X B^T`` with a Gaussian ``B``."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((SAMPLES, DIM)))
    x = q * np.sqrt(SAMPLES)
    return x, x @ rng.standard_normal((DIM, DIM)).T


def run(quick: bool = False) -> list[Trajectory]:
    """Train every case with the monitor and pair it with the closed-form solution."""
    x, y = task()
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    trajectories = []
    for label, (lam, sigma) in CASES.items():
        w_1, w_2 = lambda_balanced_init(lam, sigma * np.linspace(1, 0.5, DIM), DIM, DIM, seed=1)
        model = nn.Sequential(nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, DIM, bias=False)).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(w_1))
            model[1].weight.copy_(torch.from_numpy(w_2))
        solution = LambdaBalancedSolution(w_1, w_2, x, y)
        horizon = 0.9 * 15 / solution.max_rate
        lr = STEP["quick" if quick else "full"] / (abs(lam) + 2 * solution.max_rate)
        measured = train_with_monitor(model, inputs, targets, 1 / SAMPLES, lr, round(horizon / lr))
        trajectories.append(trajectory(label, measured, exact_kernel_at(solution, x), y, horizon))
    return trajectories


def main(argv: list[str] | None = None) -> list[Trajectory]:
    """Run the comparison, save the plot, print the largest measured-vs-exact gaps."""
    return example_main(
        argv,
        __doc__.splitlines()[0],
        default_out="lambda_balanced.png",
        run=run,
        title="Lambda-balanced W_2 W_1 x: monitor (markers) vs exact gradient flow (lines)",
        label_width=13,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
