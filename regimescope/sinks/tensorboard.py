"""A sink that streams records to TensorBoard event files."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from regimescope.record import Record
from regimescope.sinks.base import Sink
from regimescope.sinks.layout import build_layout

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

logger = logging.getLogger(__name__)

_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+\.)\s")
WIDE_BINS = 64
"""Even buckets of a histogram whose values lie beyond TensorBoard's default buckets (``|v| > 1e20``)."""
MAX_QUEUE = 1024
"""Events the writer's background thread may hold before a write waits for it. TensorBoard's default of 10 made
every record of a hundred-odd scalars wait for the thread to serialize them one by one: 0.02 s of each measurement
on the benchmark's GPT-2 and LM, 5 to 15 % of it. A record's events are queued whole, and :meth:`TensorBoardSink.write`
waits once, for the thread to have written them all."""


def tensorboard_markdown(text: str) -> str:
    """``text`` with a blank line before every list that follows a paragraph line.

    regimescope writes CommonMark, where a list may follow a line directly; TensorBoard's Text tab renders with
    Python-Markdown, which then runs the items into the paragraph ("**head** - a - b" on one line).
    """
    lines: list[str] = []
    for line in text.split("\n"):
        if _LIST_ITEM.match(line) and lines and lines[-1].strip() and not _LIST_ITEM.match(lines[-1]):
            lines.append("")
        lines.append(line)
    return "\n".join(lines)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside, back to its previous state after.

    Importing TensorBoard creates hundreds of thousands of objects, each allocation counting towards the next
    collection, and in a process that already holds many (a Hugging Face model and its library) the collections
    dominate: the import took 0.26 s with collection on and 0.09 s with it off, after ``transformers`` was imported.
    The imported modules live as long as the process, so collecting while they are made frees nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _summary_writer_class() -> type[SummaryWriter]:
    """Import ``torch.utils.tensorboard.SummaryWriter`` now (collection paused), so that importing regimescope
    never does."""
    try:
        with _collection_paused():
            from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(
            "TensorBoardSink needs the `tensorboard` package, which could not be imported "
            f"({err}). Install it with `pip install tensorboard`, or write to regimescope.sinks.JsonlSink or "
            "MemorySink instead."
        ) from err
    return SummaryWriter


_EVENT_FILE = re.compile(r"events\.out\.tfevents\.(\d+)\.")


def _after_existing_event_files(logdir: str) -> None:
    """Wait, if needed, until the clock's second is past the creation second of every event file in ``logdir``.

    TensorBoard reads a folder's event files in name order, and a resumed session's purge hides only the points read
    before it. Names are ``events.out.tfevents.<second>.<host>.<pid>.<counter>``, the counter not zero-padded
    (``.10`` sorts before ``.9``), so two files of one process opened in the same second can sort in the wrong order;
    a later second always sorts after. The wait (under a second, once per resume) happens only when a file of this
    second exists.
    """
    if not os.path.isdir(logdir):
        return
    stamps = [int(match.group(1)) for name in os.listdir(logdir) if (match := _EVENT_FILE.match(name))]
    wait = max(stamps, default=0) + 1 - time.time()
    if wait > 0:
        time.sleep(min(wait, 1.0))  # a file stamped ahead of this clock (another host's, a copied run) waits no more


def _check_image(tag: str, image: np.ndarray) -> np.ndarray:
    """Return ``image`` as an array after checking it is (H, W, 3) uint8."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"image {tag!r} must be an (H, W, 3) uint8 array, received shape {array.shape} and dtype "
            f"{array.dtype}; build it with regimescope.image.heatmap_rgb(matrix)."
        )
    return array


class TensorBoardSink(Sink):
    """Writes records to a TensorBoard log folder through ``torch.utils.tensorboard.SummaryWriter``.

    Scalars go to ``add_scalar``, histograms to ``add_histogram``, images (``(H, W, 3)`` uint8) to
    ``add_image`` and texts (alerts under ``regimescope/alerts``) to ``add_text``, which TensorBoard files
    under ``<tag>/text_summary``. With the first record the sink also writes the custom-scalars layout of
    :func:`regimescope.sinks.layout.build_layout` (the "Custom Scalars" tab), once: TensorBoard reads only
    the first layout of a run. Histogram values that are not finite are left out (with a warning), since
    a histogram of NaN has no bins.

    The event file is opened with the first record. After :meth:`resume` at step ``s`` it is opened with
    ``purge_step=s + 1``, so TensorBoard drops the points of later steps that a crashed session wrote before. A
    write that fails (a full disk) leaves the event file as it is and the next write opens a new one.

    TensorBoard keeps a sample of long scalar series (its reservoir drops points); pair this sink with
    :class:`regimescope.sinks.JsonlSink` to keep every point.

    Args:
        logdir: Run folder the event files go to (created if missing).
        flush_secs: Seconds between automatic flushes of pending events to disk.

    Raises:
        ImportError: If ``tensorboard`` is not installed, with the ``pip install tensorboard`` line.
        ValueError: If ``flush_secs`` is not positive.
    """

    def __init__(self, logdir: str | os.PathLike[str], flush_secs: int = 30) -> None:
        if flush_secs <= 0:
            raise ValueError(
                f"flush_secs must be a positive number of seconds, received {flush_secs}; "
                "use e.g. flush_secs=30 to see new points in TensorBoard within half a minute."
            )
        self._summary_writer = _summary_writer_class()
        self.logdir = os.fspath(logdir)
        self.flush_secs = flush_secs
        self._writer: SummaryWriter | None = None
        self._purge_step: int | None = None
        self._closed = False
        self._layout_written = False
        logger.info("TensorBoard logs go to %s; view them with: tensorboard --logdir %s", self.logdir, self.logdir)

    def __repr__(self) -> str:
        return f"TensorBoardSink({self.logdir!r})"

    def _open_writer(self, step: int) -> SummaryWriter:
        if self._closed:
            raise RuntimeError(
                f"TensorBoardSink({self.logdir!r}) was closed and cannot write the record of step {step}; "
                "create a new TensorBoardSink to keep writing."
            )
        if self._writer is None:
            if self._purge_step is not None:
                _after_existing_event_files(self.logdir)
            self._writer = self._summary_writer(
                log_dir=self.logdir, flush_secs=self.flush_secs, purge_step=self._purge_step, max_queue=MAX_QUEUE
            )
            self._purge_step = None
        return self._writer

    def write(self, record: Record) -> None:
        """Write every entry of ``record`` at ``record.step``, and the layout with the first record; return once they
        are in the event file.

        The writer's background thread serializes the events; waiting for it here (one wait per record) puts that
        work inside the monitor's timed write, which the overhead budget counts, instead of inside the training
        steps that follow, where no clock of the monitor sees it; and a process that dies after a measurement keeps
        that measurement's events.

        Raises:
            RuntimeError: If the sink was closed.
            ValueError: If an image is not an ``(H, W, 3)`` uint8 array.
        """
        images = {tag: _check_image(tag, image) for tag, image in record.images.items()}
        writer = self._open_writer(record.step)
        try:
            self._add(writer, record, images)
            writer.flush()
        except Exception:
            self._drop_writer()
            raise

    def _add(self, writer: SummaryWriter, record: Record, images: dict[str, np.ndarray]) -> None:
        if not self._layout_written:
            writer.add_custom_scalars(build_layout(record.scalars))
            self._layout_written = True
        step = record.step
        for tag, value in record.scalars.items():
            writer.add_scalar(tag, float(value), global_step=step)
        for tag, values in record.histograms.items():
            self._add_histogram(writer, tag, np.asarray(values, dtype=np.float64).reshape(-1), step)
        for tag, image in images.items():
            writer.add_image(tag, image, global_step=step, dataformats="HWC")
        for tag, text in record.texts.items():
            writer.add_text(tag, tensorboard_markdown(text), global_step=step)

    def _drop_writer(self) -> None:
        """Let go of a writer that failed (its event file stays as written); the next write opens a new one."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                logger.debug("TensorBoardSink(%r): closing the failed writer failed too", self.logdir, exc_info=True)

    @staticmethod
    def _add_histogram(writer: SummaryWriter, tag: str, values: np.ndarray, step: int) -> None:
        """Add the finite part of ``values`` as a histogram; skip it (with a warning) when nothing is finite.

        TensorBoard's default buckets span ``|v| <= 1e20`` (``writer.default_bins``); beyond it (the weights of a
        diverging run) the histogram gets :data:`WIDE_BINS` even buckets over its range instead, and none when even
        that range overflows a float.
        """
        finite = values[np.isfinite(values)]
        if finite.size < values.size:
            logger.warning(
                "histogram %r at step %d has %d non-finite value(s) of %d; they are left out of TensorBoard",
                tag, step, values.size - finite.size, values.size,
            )
        if finite.size == 0:
            return
        low, high = finite.min(), finite.max()
        bins: str | int = "tensorflow" if max(high, -low) <= writer.default_bins[-1] else WIDE_BINS
        with np.errstate(over="ignore"):  # the sum of squares of huge values is infinite, as it should be
            if not np.isfinite(high - low):
                logger.warning("histogram %r at step %d spans more than a float can hold; left out", tag, step)
                return
            writer.add_histogram(tag, finite, global_step=step, bins=bins)

    def resume(self, step: int) -> None:
        """Open the next event file with ``purge_step=step + 1``: TensorBoard then hides the points of steps after
        ``step`` written before (by the session that crashed past its checkpoint)."""
        self._drop_writer()
        self._purge_step = int(step) + 1

    def flush(self) -> None:
        """Write pending events to disk now."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file. Closing twice is harmless."""
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
