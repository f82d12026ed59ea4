"""A one-line progress bar for long work (the demo, reports) that stays silent when output is not a terminal."""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TextIO

WIDTH = 24
"""Characters of the bar itself."""
MIN_INTERVAL = 0.1
"""Seconds between redraws (updates in between only count)."""


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (not a pipe, a file, a CI log or ``TERM=dumb``)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


class Progress:
    """A progress bar redrawn in place on ``stream`` (standard error by default), erased when done.

    When ``stream`` is not a terminal (redirected output, CI logs, notebooks' captured streams) nothing at all is
    written, so logs and piped output stay clean. Use it as a context manager, or call :meth:`close`.

    Args:
        total: Units of work (must be ``>= 0``).
        description: Shown before the bar.
        stream: Where to draw; standard error when ``None``.
        enabled: Force drawing on or off; by default on exactly when ``stream`` is a terminal.

    Raises:
        ValueError: When ``total`` is negative.
    """

    def __init__(
        self, total: int, description: str = "", stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        if total < 0:
            raise ValueError(f"`total` must be a number of work units >= 0; received {total}.")
        self.total = total
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.done = 0
        self._detail = ""
        self._drawn_at = 0.0
        self._width = 0

    def update(self, count: int = 1, detail: str | None = None) -> None:
        """Count ``count`` more units done; ``detail`` (e.g. the current run) replaces the text after the bar."""
        self.done = min(self.done + count, self.total) if self.total else self.done + count
        if not self.enabled:
            return
        changed = detail is not None and detail != self._detail
        if detail is not None:
            self._detail = detail
        now = time.monotonic()
        if changed or now - self._drawn_at >= MIN_INTERVAL or self.done == self.total:
            self._drawn_at = now
            self._draw()

    def _draw(self) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * WIDTH))
        bar = "#" * filled + "-" * (WIDTH - filled)
        line = f"{self.description} [{bar}] {self.done}/{self.total} {self._detail}".rstrip()
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Erase the bar (the line is left empty for what is printed next)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
