"""The warnings category alerts are issued under."""

from __future__ import annotations


class RegimeWarning(UserWarning):
    """Category of the ``warnings`` that regimescope's alerts raise.

    Filter it like any category, e.g. ``warnings.simplefilter("error", rs.RegimeWarning)`` to stop on the first
    alert in a notebook, or ``warnings.simplefilter("ignore", rs.RegimeWarning)`` to silence them (logging and
    TensorBoard still receive every alert).
    """
