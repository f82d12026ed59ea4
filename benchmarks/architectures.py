"""Known answers on real architectures: the verdict on a BatchNorm ResNet and a Hugging Face GPT-2 in runs whose
regime is known by construction, next to whether each network actually trained as its linearisation.

The scenarios (output-scaled centred models, a small learning rate on a wide network, small initialisation, a head
trained on frozen features, fine-tuning after pre-training) are described in ``regimescope.scenarios.architectures``,
which the tests share. For each run the table gives theory's answer, the monitor's final label and score, the final
kernel distance ``S(K_0, K_T)`` and relative change ``|K_T - K_0| / |K_0|`` (monitor attached for the whole run,
``max_overhead=None``), the training loss at the start and over the last 10 steps, and the linearisation gap
``|F_T - F_T^lin| / |F_T - F_0|`` on the probe (the network and its linearisation at the start of the run trained side
by side: much smaller than 1 when training is lazy), and whether the verdict agrees with theory's answer and with the
gap (lazy below 0.15, not lazy above 0.3, no claim between). Run from the repository root (scikit-learn and transformers
installed, ``pip install -e ".[examples,transformers]"``)::

    python benchmarks/architectures.py              # the full size (about 40 minutes on one core)
    python benchmarks/architectures.py --markdown   # the table in docs/verdict.md
    python benchmarks/architectures.py --quick --only gpt2/   # the tests' size
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings

import torch
from tables import format_table

from regimescope.scenarios.architectures import (
    FULL,
    QUICK,
    SCENARIOS,
    Outcome,
    Size,
    agrees_with_gap,
    linearisation_gap,
    run_scenario,
)

COLUMNS = ("scenario", "theory", "steps", "verdict", "score", "S(K0,KT)", "rel. change", "loss", "lin. gap",
           "= theory", "= gap")


def row(outcome: Outcome, gap: float | None) -> tuple[str, ...]:
    """The table cells of one run."""
    scenario = outcome.scenario
    return (
        scenario.name,
        str(scenario.theory),
        str(outcome.steps),
        outcome.label,
        f"{outcome.score:.2f}",
        f"{outcome.distance:.2g}",
        f"{outcome.change:.2g}",
        f"{outcome.losses[0]:.2f} -> {outcome.final_loss:.2f}",
        "-" if gap is None else f"{gap:.2g}",
        "yes" if outcome.agrees else "NO",
        _yes_no(None if gap is None else agrees_with_gap(outcome.label, gap)),
    )


def _yes_no(agrees: bool | None) -> str:
    return "-" if agrees is None else "yes" if agrees else "NO"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the table; exit status 0 (a disagreement with theory is a finding, not a
    failure: the linearisation gap says which of the two is right)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--quick", action="store_true", help="the tests' size instead of the full one")
    parser.add_argument("--only", nargs="*", default=None, help="run only scenarios whose name starts with these")
    parser.add_argument("--no-gap", action="store_true", help="skip the linearisation gap (halves the time)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="show the monitors' logs and each run's explanation")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.verbose:
        logging.getLogger("regimescope").setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    size: Size = QUICK if args.quick else FULL
    chosen = [s for name, s in SCENARIOS.items() if not args.only or any(name.startswith(p) for p in args.only)]
    start = time.perf_counter()
    rows, agreeing, with_gap, gap_claims = [], 0, 0, 0
    for scenario in chosen:
        outcome = run_scenario(scenario, size)
        gap = None if args.no_gap else linearisation_gap(scenario, size)
        rows.append(row(outcome, gap))
        agreeing += outcome.agrees
        claim = None if gap is None else agrees_with_gap(outcome.label, gap)
        gap_claims += claim is not None
        with_gap += bool(claim)
        if args.verbose:
            print(f"{scenario.name}:\n{outcome.explanation}\n", flush=True)
    print(format_table(COLUMNS, rows, args.markdown))
    print(f"\n{agreeing}/{len(chosen)} verdicts agree with theory's answer, {with_gap}/{gap_claims} with the "
          f"linearisation gap where it makes a claim ({time.perf_counter() - start:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
