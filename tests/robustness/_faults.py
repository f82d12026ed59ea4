"""Fault injectors shared by the robustness tests (torch-free): sinks that raise, writes cut short, read-only file
systems, and the tracebacks they leave in the log."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from regimescope.record import Record
from regimescope.sinks import Sink


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The log records of regimescope's loggers that carry a traceback."""
    return [r for r in caplog.records if r.name.startswith("regimescope") and r.exc_info]


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


class RaisingSink(Sink):
    """Raises ``error`` from the methods named in ``failing`` (``write``, ``resume``, ``flush``, ``close``) and
    records every call."""

    def __init__(self, error: BaseException, failing: set[str]) -> None:
        self.error = error
        self.failing = failing
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failing:
            raise self.error

    def write(self, record: Record) -> None:
        self._call("write")

    def resume(self, step: int) -> None:
        self._call("resume")

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        self._call("close")

    def __repr__(self) -> str:
        return "RaisingSink()"


def cut_writes(
    monkeypatch: pytest.MonkeyPatch, fault: Callable[[int, bytes], BaseException | None], part: float = 0.5
) -> None:
    """Patch ``os.write``: where ``fault(fd, data)`` returns an exception, write the first ``part`` of ``data`` (what
    a full disk or a signal leaves) and raise it; elsewhere write normally."""
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        error = fault(fd, bytes(data))
        if error is None:
            return real_write(fd, data)
        if part:
            real_write(fd, bytes(data[: int(len(data) * part)]))
        try:
            raise error
        finally:
            del error  # no frame -> exception -> traceback -> frame cycle keeping the written data alive

    monkeypatch.setattr(os, "write", write)


def read_only_below(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Make opening anything under ``root`` for writing fail as on a read-only file system (CI runs as root,
    which a chmod does not stop)."""
    real_open = os.open

    def open_(path: str, flags: int, *args: int) -> int:
        if str(path).startswith(str(root)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_)
