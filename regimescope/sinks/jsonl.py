"""A sink that appends every record as one JSON line, at full resolution."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from regimescope.record import Record
from regimescope.sinks.base import Sink

logger = logging.getLogger(__name__)


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


class JsonlSink(Sink):
    """Appends one JSON object per record (:meth:`Record.to_json`) to a file, one per line.

    Unlike TensorBoard, whose reservoir drops points of long runs, the file keeps every point. Each write
    is flushed at once, so the file is readable while training runs and survives a crash up to the last
    measurement. Images are not stored (they are views derived from other values). Non-finite scalars are
    written as ``NaN``/``Infinity``, which :func:`read_jsonl` (and Python's ``json``) read back.

    Args:
        path: The ``.jsonl`` file; missing parent folders are created and an existing file is appended to.

    Raises:
        IsADirectoryError: If ``path`` is an existing folder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"JsonlSink expects a file path, received the existing folder {str(self.path)!r}; "
                f"pass a file inside it, e.g. {str(self.path / 'regimescope.jsonl')!r}."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("a", encoding="utf-8")
        logger.debug("JsonlSink appending to %s", self.path)

    def write(self, record: Record) -> None:
        """Append ``record`` as one JSON line and flush.

        Raises:
            RuntimeError: If the sink was closed.
        """
        if self._file is None:
            raise RuntimeError(
                f"JsonlSink({str(self.path)!r}) was closed and cannot write the record of step {record.step}; "
                "create a new JsonlSink on the same path to keep appending."
            )
        self._file.write(json.dumps(record.to_json(), default=_json_default) + "\n")
        self._file.flush()

    def flush(self) -> None:
        """Flush the file (each write already does)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the file. Closing twice is harmless."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_jsonl(path: str | os.PathLike[str]) -> list[Record]:
    """Read back the records a :class:`JsonlSink` wrote.

    Args:
        path: The ``.jsonl`` file.

    Returns:
        The records in file order (without images, which are not stored). Blank lines are skipped.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If a line is not a JSON record, with its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"read_jsonl expects the file a JsonlSink wrote, but {str(path)!r} does not exist or is not a file."
        )
    records: list[Record] = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                records.append(Record.from_json(data))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
                raise ValueError(
                    f"{path}:{number} is not a regimescope record ({type(err).__name__}: {err}); expected one "
                    'JSON object with a "step" per line, as JsonlSink writes. A last line cut short by a crash '
                    "can be deleted by hand."
                ) from err
    return records
