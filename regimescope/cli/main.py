"""The ``regimescope`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from regimescope.alerts import RegimeWarning
from regimescope.cli import report, sweep
from regimescope.cli.demo import DEFAULT_LOGDIR, format_table, run_demo, shell_command, total_steps
from regimescope.progress import Progress


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="regimescope", description="Lazy or rich? Watch your network's regime.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train small networks from balanced, upstream, downstream, large and wide-NTK inits and show verdicts",
    )
    demo.add_argument(
        "--logdir", type=Path, default=DEFAULT_LOGDIR, help=f"TensorBoard folder (default {DEFAULT_LOGDIR})"
    )
    demo.add_argument(
        "--quick", action="store_true", help="measure half as often: the same runs and verdicts, coarser curves"
    )
    report.add_parser(commands)
    sweep.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``regimescope`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        mode = "quick" if args.quick else "full"
        print(f"regimescope demo ({mode}): two-layer ReLU teacher-student, five initialisations", flush=True)
        with Progress(total_steps(), "training") as progress, warnings.catch_warnings():
            warnings.simplefilter("ignore", RegimeWarning)  # the table and the dashboard show the verdicts
            outcomes = run_demo(args.logdir, args.quick, progress)
        print(format_table(outcomes))
        tensorboard = shell_command("tensorboard", "tensorboard.main", "--logdir", args.logdir)
        report_command = shell_command("regimescope", "regimescope.cli.main", "report", args.logdir)
        print(f"\nTensorBoard logs are in {args.logdir}. Look at them with:\n\n    {tensorboard}\n")
        print(f"(open the regimescope tab), or write a static report with:\n\n    {report_command}\n")
    elif args.command == "report":
        return report.run(args)
    elif args.command == "sweep":
        return sweep.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
