"""``regimescope report``: PNG figures and one self-contained HTML page per run, and a side-by-side comparison.

Importing this package imports neither torch nor matplotlib (matplotlib, the ``report`` extra, is imported when
figures are drawn), so the TensorBoard plugin can share :mod:`regimescope.report.run_data`.
"""

from regimescope.report.run_data import AlertRow, LayerGrid, RunData, Series, load_runs

__all__ = ["AlertRow", "LayerGrid", "RunData", "Series", "load_runs"]
