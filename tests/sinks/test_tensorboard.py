"""TensorBoardSink writes event files that TensorBoard reads back with every tag, point and value."""

from __future__ import annotations

import gc
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.summary.writer import event_file_writer

from regimescope.image import heatmap_rgb
from regimescope.record import Record
from regimescope.sinks import TensorBoardSink
from regimescope.sinks.tensorboard import MAX_QUEUE, _collection_paused

SCORE = "regimescope/regime/score"
DISTANCE = "regimescope/kernel/distance_from_init"
LAYER_DISTANCE = "regimescope/kernel/distance_from_init/fc1"
BALANCE = "regimescope/balance/fc1-fc2"
HISTOGRAM = "regimescope/balance_values/fc1-fc2"
HEATMAP = "regimescope/kernel/heatmap"
ALERTS = "regimescope/alerts"
STEPS = [0, 10, 20, 30]


def _accumulate(logdir: Path) -> event_accumulator.EventAccumulator:
    guidance = {
        event_accumulator.COMPRESSED_HISTOGRAMS: 0,
        event_accumulator.IMAGES: 0,
        event_accumulator.AUDIO: 0,
        event_accumulator.SCALARS: 0,
        event_accumulator.HISTOGRAMS: 0,
        event_accumulator.TENSORS: 0,
    }
    accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance=guidance)
    accumulator.Reload()
    return accumulator


def _records() -> list[Record]:
    kernel = np.outer(np.arange(6.0), np.arange(6.0))
    records = []
    for index, step in enumerate(STEPS):
        record = Record(
            step=step,
            scalars={SCORE: 0.25 * index, DISTANCE: 0.01 * index, LAYER_DISTANCE: 0.02 * index, BALANCE: 1.5},
            histograms={HISTOGRAM: np.linspace(-1.0, 1.0, 50) * (index + 1)},
        )
        if index % 2 == 0:
            record.images[HEATMAP] = heatmap_rgb(kernel + index)
        if index == 3:
            record.texts[ALERTS] = "**regime shift**: lazy -> rich"
        records.append(record)
    return records


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    with TensorBoardSink(tmp_path / "run") as sink:
        for record in _records():
            sink.write(record)
    return tmp_path / "run"


def test_scalars_have_every_point_and_value(logdir: Path) -> None:
    accumulator = _accumulate(logdir)
    assert set(accumulator.Tags()["scalars"]) == {SCORE, DISTANCE, LAYER_DISTANCE, BALANCE}
    for tag, expected in (
        (SCORE, [0.0, 0.25, 0.5, 0.75]),
        (LAYER_DISTANCE, [0.0, 0.02, 0.04, 0.06]),
        (BALANCE, [1.5] * 4),
    ):
        events = accumulator.Scalars(tag)
        assert [e.step for e in events] == STEPS
        assert [e.value for e in events] == pytest.approx(expected, abs=1e-6)


def test_a_record_of_many_scalars_is_queued_whole_and_in_the_file_when_write_returns(tmp_path: Path) -> None:
    scalars = {f"regimescope/kernel/metric_{i}": float(i) for i in range(300)}
    with TensorBoardSink(tmp_path / "run") as sink:
        sink.write(Record(0, scalars=scalars))
        assert sink._writer.max_queue == MAX_QUEUE > len(scalars)  # no wait on the writer thread event by event
        accumulator = _accumulate(tmp_path / "run")  # read before closing: a crash now would keep the record
        assert len(accumulator.Tags()["scalars"]) == 300
        assert accumulator.Scalars("regimescope/kernel/metric_299")[0].value == 299.0


def test_histograms(logdir: Path) -> None:
    accumulator = _accumulate(logdir)
    assert accumulator.Tags()["histograms"] == [HISTOGRAM]
    events = accumulator.Histograms(HISTOGRAM)
    assert [e.step for e in events] == STEPS
    for index, event in enumerate(events):
        value = event.histogram_value
        assert value.num == 50
        assert value.min == pytest.approx(-(index + 1))
        assert value.max == pytest.approx(index + 1)
        assert value.sum == pytest.approx(0.0, abs=1e-9)


def test_images_decode_to_the_written_pixels(logdir: Path) -> None:
    accumulator = _accumulate(logdir)
    assert accumulator.Tags()["images"] == [HEATMAP]
    events = accumulator.Images(HEATMAP)
    assert [e.step for e in events] == [0, 20]
    kernel = np.outer(np.arange(6.0), np.arange(6.0))
    for event, index in zip(events, (0, 2)):
        pixels = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
        assert (event.height, event.width) == (6, 6)
        np.testing.assert_array_equal(pixels, heatmap_rgb(kernel + index))


def test_alert_text(logdir: Path) -> None:
    accumulator = _accumulate(logdir)
    text_tags = accumulator.PluginTagToContent("text")
    (tag,) = text_tags
    assert tag.startswith(ALERTS + "/")
    (event,) = accumulator.Tensors(tag)
    assert event.step == 30
    assert event.tensor_proto.string_val[0].decode() == "**regime shift**: lazy -> rich"


def test_custom_scalars_layout_written_once_and_names_the_contract(logdir: Path) -> None:
    accumulator = _accumulate(logdir)
    config_tags = list(accumulator.PluginTagToContent("custom_scalars"))
    assert config_tags == ["custom_scalars__config__"]
    (event,) = accumulator.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout()
    layout.ParseFromString(event.tensor_proto.string_val[0])
    (category,) = layout.category
    assert category.title == "regimescope"
    regexes = [regex for chart in category.chart for regex in chart.multiline.tag]
    for family in ("kernel/distance_from_init", "balance", "balance_drift", "weights/relative_change",
                   "representation/cka_to_init", "activations/pattern_change", "cost"):
        assert f"regimescope/{family}/.*" in regexes
    for tag in (SCORE, "regimescope/regime/label", DISTANCE, "regimescope/kernel/velocity",
                "regimescope/kernel/effective_rank", LAYER_DISTANCE, BALANCE, "regimescope/cost/seconds"):
        assert any(re.search(regex, tag) for regex in regexes), tag


def test_non_finite_histogram_values_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with TensorBoardSink(tmp_path) as sink:
        sink.write(Record(step=1, histograms={"h": np.array([1.0, np.nan, 3.0]), "empty": np.array([np.inf])}))
    assert "non-finite" in caplog.text
    accumulator = _accumulate(tmp_path)
    assert accumulator.Tags()["histograms"] == ["h"]
    (event,) = accumulator.Histograms("h")
    assert event.histogram_value.num == 2


def test_histograms_of_a_diverging_run_are_written_beyond_the_default_buckets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TensorBoard's default buckets end at 1e20: torch's writer raised "The histogram is empty" on the balance of a
    run whose weights reached 1e32, which cost the run its record; a range no float holds is left out, logged."""
    huge = np.array([1e32, 2e32, -1e32, 0.0])
    with TensorBoardSink(tmp_path) as sink:
        sink.write(Record(step=1, histograms={"huge": huge, "overflow": np.array([-1e308, 1e308])}))
    assert "spans more than a float can hold" in caplog.text
    accumulator = _accumulate(tmp_path)
    assert accumulator.Tags()["histograms"] == ["huge"]
    (event,) = accumulator.Histograms("huge")
    value = event.histogram_value
    assert (value.num, value.min, value.max) == (4, -1e32, 2e32)
    assert sum(value.bucket) == 4


def test_bad_image_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    with TensorBoardSink(tmp_path) as sink:
        bad = Record(step=0, scalars={SCORE: 0.5}, images={HEATMAP: np.zeros((4, 4), dtype=np.float32)})
        with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 .*heatmap_rgb"):
            sink.write(bad)
    assert _accumulate(tmp_path).Tags()["scalars"] == []


def test_write_after_close_and_bad_flush_secs(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path)
    sink.flush()
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(Record(step=0))
    with pytest.raises(ValueError, match="flush_secs"):
        TensorBoardSink(tmp_path, flush_secs=0)


def _next_event_file_counter_gains_a_digit() -> None:
    """Advance the process's event-file counter so that the next file gets ``.9`` (or ``.99``, ...) and the one after
    it ``.10``: the two names then sort in the wrong order within one second."""
    taken = event_file_writer._global_uid.get()
    while len(str(taken + 2)) == len(str(taken + 1)):
        taken = event_file_writer._global_uid.get()


@pytest.mark.parametrize("counter", ["as_it_is", "gaining_a_digit"])
def test_a_resumed_run_hides_the_points_a_crashed_session_wrote_past_its_checkpoint(
    tmp_path: Path, counter: str
) -> None:
    if counter == "gaining_a_digit":
        _next_event_file_counter_gains_a_digit()
    crashed = TensorBoardSink(tmp_path)
    for step in (0, 10, 20, 30):  # crashed at 35; the checkpoint was taken at 20
        crashed.write(Record(step, scalars={SCORE: 0.1}))
    crashed.flush()  # what a killed process had on disk
    with TensorBoardSink(tmp_path) as resumed:
        resumed.resume(20)
        for step in (30, 40):
            resumed.write(Record(step, scalars={SCORE: 0.2}))
    events = _accumulate(tmp_path).Scalars(SCORE)
    assert [(e.step, round(e.value, 6)) for e in events] == [(0, 0.1), (10, 0.1), (20, 0.1), (30, 0.2), (40, 0.2)]
    crashed.close()


def test_a_failed_write_leaves_the_event_file_and_the_next_write_opens_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = TensorBoardSink(tmp_path)
    sink.write(Record(0, scalars={SCORE: 0.0}))
    writer = sink._writer
    monkeypatch.setattr(writer, "add_scalar", lambda *args, **kwargs: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(OSError, match="full"):
        sink.write(Record(1, scalars={SCORE: 0.5}))
    sink.write(Record(2, scalars={SCORE: 1.0}))
    sink.close()
    assert sink._writer is None and len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    # TensorBoard reads event files in name order, and two files opened in one second may sort either way
    assert sorted(e.step for e in _accumulate(tmp_path).Scalars(SCORE)) == [0, 2]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_writer_import_pauses_collection_and_leaves_it_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    seen = []
    try:
        (gc.enable if enabled else gc.disable)()
        with _collection_paused():
            seen.append(gc.isenabled())
        assert seen == [False] and gc.isenabled() is enabled
        with pytest.raises(ImportError), _collection_paused():
            raise ImportError("no tensorboard")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
