"""``regimescope report LOGDIR``: figures and HTML pages of a logdir's runs, from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regimescope.progress import Progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``report`` subcommand."""
    report = commands.add_parser(
        "report",
        help="write PNG figures and one self-contained HTML page per run of a logdir, and a comparison page",
    )
    report.add_argument("logdir", type=Path, help="folder of runs written by RegimeMonitor(logdir=...) or the demo")
    report.add_argument("--out", type=Path, default=None, help="report folder (default LOGDIR/report)")


def run(args: argparse.Namespace) -> int:
    """Build the report; print where it is, or what went wrong and how to fix it (exit status 2)."""
    out = args.out if args.out is not None else args.logdir / "report"
    try:
        from regimescope.report.build import build_report

        with Progress(0, "report") as progress:
            files = build_report(args.logdir, out, progress=progress)
    except (FileNotFoundError, ImportError) as error:
        print(f"regimescope report: {error}", file=sys.stderr)
        return 2
    print(f"Report of {len(files.pages)} run(s) written to {out} ({len(files.figures)} figures).")
    print(f"Open {files.index} in a browser; each run has its own page next to it.")
    return 0
