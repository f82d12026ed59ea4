"""Printing a benchmark's table: aligned plain text for a terminal, or markdown for the docs."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """The header ``columns`` and the ``rows`` of cells, as a markdown table or as left-aligned plain text."""
    lines_of_cells = [tuple(columns), *(tuple(row) for row in rows)]
    if markdown:
        lines = ["| " + " | ".join(cells) + " |" for cells in lines_of_cells]
        lines.insert(1, "|" + "|".join(" --- " for _ in columns) + "|")
        return "\n".join(lines)
    widths = [max(len(cells[i]) for cells in lines_of_cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)) for cells in lines_of_cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
