"""Building the report of a logdir: PNG figures, one self-contained HTML page per run, and a comparison page."""

from __future__ import annotations

import html
import io
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from regimescope.progress import Progress
from regimescope.report import figures
from regimescope.report.html import Section, page, run_page, runs_table
from regimescope.report.run_data import RunData, load_runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

RUN_FIGURES: tuple[tuple[str, str, Callable[[RunData], Figure]], ...] = (
    ("timeline", "Verdict timeline", lambda run: figures.timeline_figure([run])),
    ("kernel", "Kernel indicators", lambda run: figures.kernel_figure([run])),
    ("families", "Indicator families, per layer", figures.families_figure),
    ("layers", "Per-layer heat maps", figures.layers_figure),
    ("cost", "Monitor cost", lambda run: figures.cost_figure([run])),
)
"""The figures of each run's page: (file stem, title, builder)."""

COMPARISON_FIGURES = (
    ("timeline", "Verdict timelines, side by side", figures.timeline_figure),
    ("kernel", "Kernel indicators, side by side", figures.kernel_figure),
    ("cost", "Monitor cost, side by side", figures.cost_figure),
)
"""The figures of the comparison page (all runs): (file stem, title, builder)."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`build_report` wrote.

    Attributes:
        index: The comparison page ``index.html``.
        pages: ``run name -> its HTML page``.
        figures: Every PNG written.
    """

    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def slug(name: str) -> str:
    """A file-name-safe form of a run name (``"sweep/lr=0.1"`` -> ``"sweep__lr_0.1"``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("/", "__")) or "run"


def _save(figure: Figure, path: Path) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = buffer.getvalue()
    path.write_bytes(data)
    return data


def build_report(
    logdir: str | os.PathLike[str], out: str | os.PathLike[str], progress: Progress | None = None
) -> ReportFiles:
    """Write the report of every run under ``logdir`` into ``out``.

    ``out/index.html`` compares the runs side by side (verdict timelines, kernel indicators, cost) and links to
    ``out/<run>.html``, one self-contained page per run (explanation, step-0 forecast, conservation diagnosis,
    alerts, verdict timeline, kernel indicators, every per-layer family, layer x step heat maps, cost; a run whose
    monitor paused before measuring anything has its error and no figure). The PNGs are written too:
    ``out/<figure>.png`` for the comparison and ``out/<run>/<figure>.png`` per run. Runs are read from their
    ``regimescope.jsonl`` (every point, the last session when a folder was written twice).

    Args:
        logdir: A logdir holding runs (folders with ``regimescope.jsonl``), or one run's folder.
        out: The report folder (created if missing; files in it are overwritten).
        progress: Counts figures drawn, when given (its ``total`` is set here).

    Returns:
        The files written.

    Raises:
        FileNotFoundError: When ``logdir`` holds no run.
        ImportError: When matplotlib is missing (with the install line).
    """
    runs = load_runs(logdir)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.total = len(COMPARISON_FIGURES) + sum(bool(run.scalars) for run in runs) * len(RUN_FIGURES)
    written: list[Path] = []
    pages: dict[str, Path] = {}
    for run in runs:
        folder = root / slug(run.name)
        folder.mkdir(exist_ok=True)
        sections = []
        for stem, title, build in RUN_FIGURES if run.scalars else ():  # a run that paused at step 0 has no figure
            path = folder / f"{stem}.png"
            sections.append(Section(title, png=_save(build(run), path)))
            written.append(path)
            if progress is not None:
                progress.update(detail=f"{run.name}: {stem}")
        pages[run.name] = root / f"{slug(run.name)}.html"
        pages[run.name].write_text(run_page(run, sections), encoding="utf-8")
    comparison = []
    for stem, title, build in COMPARISON_FIGURES:
        path = root / f"{stem}.png"
        comparison.append(Section(title, png=_save(build(runs), path)))
        written.append(path)
        if progress is not None:
            progress.update(detail=stem)
    links = {name: path.name for name, path in pages.items()}
    intro = (
        f"{len(runs)} run(s) of <code>{html.escape(str(logdir))}</code>. "
        "Each run's page has its alerts and per-layer views."
    )
    index = root / "index.html"
    index.write_text(
        page("regimescope report", intro, [Section("Runs", body=runs_table(runs, links)), *comparison]),
        encoding="utf-8",
    )
    logger.info("regimescope report: %d run(s), %d figure(s) in %s", len(runs), len(written), root)
    return ReportFiles(index=index, pages=pages, figures=written)
