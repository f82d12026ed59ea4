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

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from _exact_plot import Trajectory, plot, train_with_monitor, trajectory
from torch import nn

from regimescope.forecast import MinimalModelSolution

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
        k_0 = solution.at(0.0).kernel(x)

        def exact_at(t: float, solution: MinimalModelSolution = solution, k_0: np.ndarray = k_0):
            state = solution.at(t)
            k_t = state.kernel(x)
            distance = 1 - (k_0 * k_t).sum() / (np.linalg.norm(k_0) * np.linalg.norm(k_t))
            return max(distance, 0.0), np.linalg.norm(k_t) / np.linalg.norm(k_0), state.function(x)

        trajectories.append(trajectory(label, measured, exact_at, x @ beta_star, HORIZON))
    return trajectories


def main(argv: list[str] | None = None) -> list[Trajectory]:
    """Run the comparison, save the plot, print the largest measured-vs-exact gaps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("minimal_model.png"), help="PNG to write")
    parser.add_argument("--quick", action="store_true", help="4x coarser step (a few seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    trajectories = run(args.quick)
    plot(trajectories, args.out, "Minimal model f = a w^T x: monitor (markers) vs exact gradient flow (lines)")
    for item in trajectories:
        gaps = ", ".join(f"{name} {gap:.2%}" for name, gap in item.worst_error().items())
        print(f"{item.label:<12} largest gap to the exact solution: {gaps}")
    print(f"plot written to {args.out}")
    return trajectories


if __name__ == "__main__":
    main(sys.argv[1:])
