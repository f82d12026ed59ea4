"""A sink that appends every record as one JSON line, at full resolution, and the reader of those files.

The format (one JSON object per line, UTF-8):

- a record: ``{"step": 40, "scalars": {tag: number}, "histograms": {tag: [numbers]}, "texts": {tag: markdown}}``
  (:meth:`Record.to_json`; non-finite scalars are written ``NaN`` / ``Infinity``);
- a resume mark: ``{"step": 20, "resumed": true}``, written when a monitor resumes from a checkpoint taken at step
  20: the lines after it replace those before it of a later step (the steps a crashed session ran past its last
  checkpoint).

A file written by several sessions is read back as the run was lived (:func:`read_jsonl`).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import numpy as np

from regimescope.record import Record
from regimescope.sinks.base import Sink
from regimescope.sinks.lock import LockHeldError, WriterLock

logger = logging.getLogger(__name__)

RESUMED_KEY = "resumed"
"""The key that marks a line as a resume mark rather than a record."""

DEFAULT_MAX_PENDING_BYTES = 32 * 2**20
"""Records that could not be written (a full disk) are kept up to this many bytes, then the oldest are dropped."""

_RECORD_START = '{"step":'


class TornLineWarning(UserWarning):
    """A JSONL file holds a fragment of a line cut short (a crash or a full disk mid-write); it was skipped and
    every complete record kept."""


def _json_default(value: Any) -> Any:
    """Convert numpy scalars and arrays that :meth:`Record.to_json` may leave in place."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(
        f"a Record value of type {type(value).__name__} cannot be written as JSON; "
        "scalars must be numbers, histograms arrays and texts strings."
    )


def _os_error(cause: BaseException | None, message: str) -> OSError:
    """An ``OSError`` saying ``message`` with the errno of ``cause`` (so that it is e.g. a ``PermissionError``)."""
    code = getattr(cause, "errno", None)
    return OSError(code, message) if code is not None else OSError(message)


def _ends_with_newline(fd: int, size: int) -> bool:
    """Whether the file of ``fd``, ``size`` bytes long, is empty or ends with a newline."""
    if size == 0:
        return True
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1) == b"\n"


def _line(data: dict) -> bytes:
    return (json.dumps(data, default=_json_default) + "\n").encode("utf-8")


class JsonlSink(Sink):
    """Appends one JSON object per record (:meth:`Record.to_json`) to a file, one per line.

    Unlike TensorBoard, whose reservoir drops points of long runs, the file keeps every point. Images are not
    stored (they are views derived from other values). What is on disk stays readable whatever happens:

    - each record goes to the file in one ``write`` call, unbuffered, so it is on disk (in the page cache) when
      :meth:`write` returns and survives the process being killed;
    - a write that fails part-way (a full disk) is cut back to the last complete line, and the record is kept and
      written with the next write that succeeds, in order (up to ``max_pending_bytes``; beyond, the oldest kept
      records are dropped and counted in :attr:`dropped`);
    - appending to a file whose last line was cut short (a crash) starts on a fresh line;
    - one writer per file: a second sink on the same path (in any process) is refused while the first is open,
      through a lock file ``<path>.lock`` released at :meth:`close` and by the end of the process.

    Args:
        path: The ``.jsonl`` file; missing parent folders are created and an existing file is appended to.
        max_pending_bytes: How many bytes of records that could not be written are kept for the next write.

    Attributes:
        path: The file.
        dropped: Records given up because the disk stayed full past ``max_pending_bytes``.

    Raises:
        IsADirectoryError: If ``path`` is an existing folder.
        OSError: If the file cannot be created or opened (a path under a regular file, a read-only folder), with
            the reason and the fix.
        RuntimeError: If another writer has the file open (e.g. a second monitor on the same ``logdir``).
        ValueError: If ``max_pending_bytes`` is negative.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"JsonlSink expects a file path, received the existing folder {str(self.path)!r}; "
                f"pass a file inside it, e.g. {str(self.path / 'regimescope.jsonl')!r}."
            )
        if max_pending_bytes < 0:
            raise ValueError(f"max_pending_bytes must be >= 0 bytes, received {max_pending_bytes}.")
        self.max_pending_bytes = max_pending_bytes
        self.dropped = 0
        self._dropping: list[int] = []  # count, first and last step dropped since the last write that succeeded
        self._pending: collections.deque[tuple[int, bytes]] = collections.deque()
        self._pending_bytes = 0
        self._lock = WriterLock(self.path.with_name(self.path.name + ".lock"))
        self._fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._claim()
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        except OSError as error:
            self._lock.release()
            raise _os_error(
                error,
                f"JsonlSink cannot write {str(self.path)!r} ({error}). Choose a folder this process can create and "
                "write (a RegimeMonitor's `logdir`), or pass logdir=None to write no files.",
            ) from error
        except BaseException:
            self._lock.release()
            raise
        logger.debug("JsonlSink appending to %s", self.path)

    def _claim(self) -> None:
        try:
            self._lock.acquire()
        except LockHeldError as held:
            raise RuntimeError(
                f"{str(self.path)!r} is being written by another monitor or JsonlSink (process {held.owner or '?'}); "
                "two writers would interleave one file. Give each RegimeMonitor its own logdir (e.g. "
                f"{str(self.path.parent / 'run-2')!r}), or close the other one first (`monitor.close()`). A lock "
                f"left by a process that ended is taken over by itself; if no process {held.owner or '?'} runs any "
                f"more (e.g. on another machine), delete {str(held.path)!r}."
            ) from None

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    @property
    def pending(self) -> int:
        """Records kept in memory because they could not be written yet (a full disk)."""
        return len(self._pending)

    def write(self, record: Record) -> None:
        """Append ``record`` as one JSON line, after any records kept from failed writes.

        Raises:
            RuntimeError: If the sink was closed.
            TypeError: If a value cannot be written as JSON.
            OSError: If the file cannot be written now (e.g. ``ENOSPC``, a full disk): the record is kept, the file
                still ends with a complete line, and the next write tries again.
        """
        self._append(record.step, record.to_json())

    def resume(self, step: int) -> None:
        """Write a resume mark: the run goes on from a checkpoint taken at ``step``, so the lines of a later step
        before the mark are superseded (:func:`read_jsonl` leaves them out)."""
        self._append(int(step), {"step": int(step), RESUMED_KEY: True})

    def _append(self, step: int, data: dict) -> None:
        if self._fd is None:
            raise RuntimeError(
                f"JsonlSink({str(self.path)!r}) was closed and cannot write the record of step {step}; "
                "create a new JsonlSink on the same path to keep appending."
            )
        line = _line(data)
        self._pending.append((step, line))
        self._pending_bytes += len(line)
        try:
            self._write_pending(self._fd)
        except BaseException:
            self._drop_beyond_bound()
            raise
        if self._dropping:
            logger.warning(
                "JsonlSink(%r) writes again; %d record(s) of steps %d..%d were dropped while it could not.",
                str(self.path), *self._dropping,
            )
            self._dropping = []

    def _drop_beyond_bound(self) -> None:
        """Drop the oldest kept records beyond ``max_pending_bytes`` (the newest is always kept)."""
        while self._pending_bytes > self.max_pending_bytes and len(self._pending) > 1:
            step, line = self._pending.popleft()
            self._pending_bytes -= len(line)
            self.dropped += 1
            if not self._dropping:
                logger.error(
                    "JsonlSink(%r): the record of step %d is dropped: more than max_pending_bytes=%d bytes of records "
                    "wait to be written. Free disk space to keep the next ones.",
                    str(self.path), step, self.max_pending_bytes,
                )
                self._dropping = [0, step, step]
            self._dropping[0] += 1
            self._dropping[2] = step

    def _write_pending(self, fd: int) -> None:
        """Write every pending line to ``fd`` in one call, on a fresh line; on any failure cut the file back."""
        if not self._pending:
            return
        size = os.fstat(fd).st_size
        fresh = b"" if _ends_with_newline(fd, size) else b"\n"
        data = memoryview(fresh + b"".join(line for _, line in self._pending))
        try:
            while data:
                data = data[os.write(fd, data):]
        except BaseException:  # a full disk, an interrupt: no fragment stays behind
            try:
                os.ftruncate(fd, size)
            except OSError:
                logger.warning("JsonlSink(%r): could not cut a failed write back; readers skip the fragment.",
                               str(self.path))
            raise
        self._pending.clear()
        self._pending_bytes = 0

    def flush(self) -> None:
        """Write the records kept from failed writes, if any (each write is otherwise on disk at once).

        Raises:
            OSError: If they still cannot be written.
        """
        if self._fd is not None:
            self._write_pending(self._fd)

    def close(self) -> None:
        """Write what is pending, sync the file to disk, close it and release the lock. Closing twice is harmless.

        Raises:
            OSError: When records are still waiting to be written and cannot be (the disk stayed full); the file is
                closed anyway and what it holds is complete and readable.
        """
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self._write_pending(fd)
            os.fsync(fd)
        except OSError as error:
            if not self._pending:
                raise
            steps = [step for step, _ in self._pending]
            raise _os_error(
                error,
                f"JsonlSink({str(self.path)!r}) closed with the records of steps {steps[0]}..{steps[-1]} "
                f"({len(steps)}) never written ({error}); every record written before is intact, and a monitor's "
                "`history` holds the rest.",
            ) from error
        finally:
            try:
                os.close(fd)
            finally:
                self._lock.release()


_Entry = Union[Record, int]
"""A record, or the step of a resume mark."""


def _parse_line(text: str) -> tuple[list[_Entry], bool]:
    """The records and resume marks of one line, and whether a fragment of the line was neither.

    A record glued after a fragment (the first write of a restarted run, by a writer that did not start on a fresh
    line) is recovered: each fragment is skipped up to the next ``{"step":``, which in a record can only open an
    object (inside strings its quotes are escaped).
    """
    decoder = json.JSONDecoder()
    entries: list[_Entry] = []
    torn = False
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return entries, torn
        try:
            data, end = decoder.raw_decode(text, position)
            if not isinstance(data, dict) or "step" not in data:
                raise ValueError("not a record")
            entries.append(int(data["step"]) if data.get(RESUMED_KEY) is True else Record.from_json(data))
        except (ValueError, KeyError, TypeError, AttributeError):
            torn = True
            position = text.find(_RECORD_START, position + 1)
            if position < 0:
                return entries, torn
            continue
        position = end


def _entries(path: Path) -> list[_Entry]:
    """Every record and resume mark of the file in order; one :class:`TornLineWarning` names the torn lines."""
    entries: list[_Entry] = []
    torn_lines = []
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            found, torn = _parse_line(raw.decode("utf-8", errors="replace"))
            entries.extend(found)
            if torn:
                torn_lines.append(number)
    if torn_lines:
        shown = ", ".join(str(n) for n in torn_lines[:10]) + (", ..." if len(torn_lines) > 10 else "")
        warnings.warn(
            f"{path}: skipped {len(torn_lines)} line fragment(s) that are not whole records, at line(s) {shown} "
            "(a write cut short by a crash or a full disk); every complete record was kept.",
            TornLineWarning,
            stacklevel=3,
        )
    return entries


def lived_run(entries: Iterable[_Entry]) -> list[Record]:
    """The run as it was lived, from the records and resume marks of a file appended to by several sessions.

    A resume mark at step ``s`` drops the records before it of a step after ``s`` (what a crashed session measured
    past its checkpoint); a record whose step does not exceed the previous one starts a session that was not marked
    (a new run into the same folder, which starts at step 0, or a resume by an older writer) and drops the records
    before it of that step or later.

    Args:
        entries: Records and resume marks (the step, an ``int``) in file order.

    Returns:
        The records of the run as lived, steps increasing.
    """
    run: list[Record] = []
    for entry in entries:
        if isinstance(entry, Record):
            if run and entry.step <= run[-1].step:
                run = [record for record in run if record.step < entry.step]
            run.append(entry)
        else:
            run = [record for record in run if record.step <= entry]
    return run


def read_jsonl(path: str | os.PathLike[str], *, as_lived: bool = True) -> list[Record]:
    """Read back the records a :class:`JsonlSink` wrote.

    A fragment of a line cut short by a crash or a full disk is skipped, with one :class:`TornLineWarning` that
    names the lines; a complete record glued after such a fragment is kept.

    Args:
        path: The ``.jsonl`` file.
        as_lived: Give the run as it was lived (:func:`lived_run`): after a resume from a checkpoint, the steps the
            crashed session ran past it are replaced by the resumed session's; when the folder was written by
            several runs, the last one. ``False``: every complete record in file order.

    Returns:
        The records (without images, which are not stored).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"read_jsonl expects the file a JsonlSink wrote, but {str(path)!r} does not exist or is not a file."
        )
    entries = _entries(path)
    if as_lived:
        return lived_run(entries)
    return [entry for entry in entries if isinstance(entry, Record)]
