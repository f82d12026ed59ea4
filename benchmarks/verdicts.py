"""The verdict table: each scenario theory knows the answer for, theory's answer, regimescope's forecast and verdict.

Trains each scenario of ``regimescope.scenarios`` (theory.md sections 4-6) with a monitor attached, then
prints one row per scenario and the calibration of the thresholds recomputed from these runs, next to the values the
library uses. Run from the repository root::

    python benchmarks/verdicts.py              # plain-text table (about a minute of CPU time)
    python benchmarks/verdicts.py --markdown   # the table of docs/theory-checks.md
    python benchmarks/verdicts.py --only minimal/ lambda/
    python benchmarks/verdicts.py --max-overhead 0.05   # with the monitor's default budget instead of on schedule
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings

import torch
from tables import format_table

from regimescope.forecast import LAZY_RATIO
from regimescope.scenarios import (
    SCENARIOS,
    Outcome,
    Signature,
    calibrate_forecast,
    calibrate_score,
    run_scenario,
)
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE
from regimescope.verdict.score import RAMPS

COLUMNS = (
    "scenario",
    "theory.md",
    "theory",
    "forecast",
    "early",
    "verdict",
    "score",
    "S(K0,KT)",
    "|dK|/|K0|",
    "agrees",
)


def row(outcome: Outcome) -> tuple[str, ...]:
    """The table cells of one run."""
    scenario = outcome.scenario
    forecast = outcome.forecast_label or "-"
    if outcome.forecast_label is not None:
        forecast += "" if outcome.forecast_confirmed else " (not confirmed)"
    return (
        scenario.name,
        scenario.section,
        str(scenario.theory),
        forecast,
        outcome.early_label,
        outcome.label,
        f"{outcome.score:.2f}",
        f"{outcome.distance:.2e}",
        f"{outcome.change:.2e}",
        "yes" if outcome.agrees else "NO",
    )


def table(outcomes: list[Outcome], markdown: bool) -> str:
    """The verdict table, plain text or markdown."""
    return format_table(COLUMNS, [row(o) for o in outcomes], markdown)


def calibration(outcomes: list[Outcome]) -> str:
    """The thresholds recomputed from these runs, next to the library's."""
    lines = ["Calibration (recomputed from these runs | in the library):"]
    names = {Signature.DIRECTION: "direction S(K0,KT)", Signature.SCALE: "scale |dK|/|K0|"}
    for signature, found in calibrate_score(outcomes).items():
        used = RAMPS[signature.value]
        lines.append(
            f"  {names[signature]:<20} lazy anchor {found.lazy_anchor:.3g} ({found.lazy_run}), rich anchor "
            f"{found.rich_anchor:.3g} ({found.rich_run}) -> ramp [{found.ramp.low:.2g}, {found.ramp.high:.2g}] | "
            f"[{used.low:.2g}, {used.high:.2g}]; labels change at {used.boundary(LAZY_BELOW):.2g} and "
            f"{used.boundary(RICH_ABOVE):.2g}"
        )
    forecast = calibrate_forecast(outcomes)
    lines.append(
        f"  {'forecast lazy ratio':<20} lazy anchor {forecast.lazy_anchor:.3g} ({forecast.lazy_run}), rich anchor "
        f"{forecast.rich_anchor:.3g} ({forecast.rich_run}) -> boundary {forecast.boundary:.2g} | {LAZY_RATIO:.2g}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table and the calibration; exit status 1 if a verdict disagrees with theory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--only", nargs="*", default=None, help="run only scenarios whose name starts with these")
    parser.add_argument("--verbose", action="store_true", help="show the monitors' logs and alerts")
    parser.add_argument(
        "--max-overhead", type=float, default=None,
        help="run every monitor with this overhead budget (e.g. the default 0.05) instead of on schedule",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.verbose:
        logging.getLogger("regimescope").setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    chosen = [s for s in SCENARIOS if not args.only or any(s.name.startswith(p) for p in args.only)]
    start = time.perf_counter()
    outcomes = [run_scenario(scenario, max_overhead=args.max_overhead) for scenario in chosen]
    print(table(outcomes, args.markdown))
    print()
    if args.only is None:
        print(calibration(outcomes))
    print(
        f"\n{sum(o.agrees for o in outcomes)}/{len(outcomes)} verdicts agree with theory; "
        f"{sum(o.forecast_confirmed for o in outcomes)}/{len(outcomes)} forecasts confirmed by training "
        f"({time.perf_counter() - start:.0f} s)."
    )
    return 0 if all(o.agrees for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
