"""What the NTK engine saves the monitor: its own cost log with the engine and with the tutorial-style path.

Trains the same network twice from the same seed (the issue's MLP and CNN, on synthetic data, SGD,
a measurement every ``--every`` steps), once with ``RegimeMonitor(implementation="auto")`` (the engine's layer
rules) and once with ``implementation="per_sample"`` (``vmap(jacrev)`` per-sample Jacobians for every block: the
method of the PyTorch tutorial's Jacobian contraction, chunked by the engine), and prints the monitor's own log, ``regimescope/cost/seconds`` per
measurement and ``regimescope/cost/fraction`` of the run's wall time, side by side, with the ratio. Both runs give
the same verdicts (checked).

Usage::

    python benchmarks/monitor_cost.py [--model mlp --model cnn] [--probe 64] [--steps 60] [--every 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402

import regimescope as rs  # noqa: E402

SHAPES = {"cnn": (3, 32, 32), "mlp": (784,)}


def train(name: str, implementation: str, probe: int, steps: int, every: int) -> tuple[list[float], float, list[str]]:
    """One training run with a monitor: the cost of each measurement, the final cost fraction, the verdict labels."""
    torch.manual_seed(0)
    model = getattr(models, name)()
    data = torch.randn(256, *SHAPES[name])
    labels = torch.randint(0, 10, (256,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(model, rs.Probe(data[:probe], labels[:probe]), optimizer, sinks=[sink],
                               every=every, implementation=implementation, strict=True)
    with monitor:
        for step in range(steps):
            batch = torch.randint(0, 256, (32,))
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(data[batch]), labels[batch]).backward()
            optimizer.step()
    _, seconds = sink.scalars("regimescope/cost/seconds")
    _, fraction = sink.scalars("regimescope/cost/fraction")
    _, labels_seen = sink.scalars("regimescope/regime/label")
    return seconds, fraction[-1], [str(label) for label in labels_seen]


def main(argv: list[str] | None = None) -> None:
    """Run both trainings and print the cost logs and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SHAPES), action="append", help="cnn and/or mlp (default both)")
    parser.add_argument("--probe", type=int, default=64, help="probe examples (default 64)")
    parser.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    parser.add_argument("--every", type=int, default=10, help="measure every this many steps (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("regimescope").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", rs.RegimeWarning)
    print(f"torch {torch.__version__}, {args.threads} threads; probe n={args.probe}, {args.steps} SGD steps of 32, "
          f"measured every {args.every} (and at steps 0, 1, 2, 4, 8)")
    for name in args.model or ["mlp", "cnn"]:
        runs = {impl: train(name, impl, args.probe, args.steps, args.every) for impl in ("per_sample", "auto")}
        print(f"\n{name}\n  {'implementation':<16} {'measurements':>12} {'median s':>9} {'total s':>8} "
              f"{'share of run':>13}")
        for impl, (seconds, fraction, _) in runs.items():
            print(f"  {impl:<16} {len(seconds):>12} {statistics.median(seconds):>9.3f} {sum(seconds):>8.2f} "
                  f"{fraction:>12.1%}")
        before, after = (statistics.median(runs[impl][0]) for impl in ("per_sample", "auto"))
        same = runs["per_sample"][2] == runs["auto"][2]
        print(f"  -> each measurement is {before / after:.1f}x cheaper with the engine; same verdicts: {same}")

if __name__ == "__main__":
    main()
