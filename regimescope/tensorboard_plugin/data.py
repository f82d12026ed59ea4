"""Reading the regimescope series, alerts and kernel images of a run through TensorBoard's data provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tensorboard.data import provider

from regimescope.report.html import NOTES
from regimescope.report.run_data import RunData, parse_alerts, series_from_mapping
from regimescope.tags import ALERTS, KERNEL_HEATMAP, ROOT, below

SCALARS_PLUGIN = "scalars"
TEXT_PLUGIN = "text"
IMAGES_PLUGIN = "images"
TEXT_SUFFIX = "/text_summary"
"""``SummaryWriter.add_text(tag, ...)`` files a text under ``tag + TEXT_SUFFIX``."""
ALERTS_TEXT_TAG = ALERTS + TEXT_SUFFIX
"""Where ``SummaryWriter.add_text("regimescope/alerts", ...)`` puts the alerts."""
TEXT_TAGS = (ALERTS_TEXT_TAG, *(text_tag + TEXT_SUFFIX for _, text_tag in NOTES))
"""The texts a run's view reads: alerts, explanation, forecast, conservation diagnosis."""
DOWNSAMPLE = 10_000
"""Points per series asked from the provider (TensorBoard keeps 1000 scalars per series by default)."""


@dataclass(frozen=True)
class KernelImage:
    """One NTK heatmap image: its step and the key to read its PNG with :meth:`DataProvider.read_blob`."""

    step: int
    blob_key: str


class RunReader:
    """Reads regimescope data of an experiment through a ``tensorboard.data.provider.DataProvider``.

    Args:
        data_provider: The provider of the TensorBoard instance (``TBContext.data_provider``).
        ctx: The request context.
        experiment_id: The experiment (empty for a plain ``--logdir``).
    """

    def __init__(self, data_provider: provider.DataProvider, ctx: Any, experiment_id: str) -> None:
        self._provider = data_provider
        self._ctx = ctx
        self._experiment = experiment_id

    def runs(self) -> list[str]:
        """Names of the runs holding a ``regimescope/`` scalar or regimescope alerts, sorted.

        A run whose monitor paused at its first measurement holds no scalar, only the alert that says why: it is
        listed, so that the dashboard shows its error rather than leaving it out.
        """
        scalars = self._provider.list_scalars(self._ctx, experiment_id=self._experiment, plugin_name=SCALARS_PLUGIN)
        texts = self._provider.list_tensors(
            self._ctx,
            experiment_id=self._experiment,
            plugin_name=TEXT_PLUGIN,
            run_tag_filter=provider.RunTagFilter(tags=[ALERTS_TEXT_TAG]),
        )
        measured = {run for run, tags in scalars.items() if any(tag.startswith(below(ROOT)) for tag in tags)}
        return sorted(measured | {run for run, tags in texts.items() if ALERTS_TEXT_TAG in tags})

    def run(self, name: str) -> RunData:
        """The scalars and alerts of run ``name`` (empty when the run does not exist)."""
        listing = self._provider.list_scalars(
            self._ctx,
            experiment_id=self._experiment,
            plugin_name=SCALARS_PLUGIN,
            run_tag_filter=provider.RunTagFilter(runs=[name]),
        )
        tags = [tag for tag in listing.get(name, {}) if tag.startswith(below(ROOT))]
        data = self._provider.read_scalars(
            self._ctx,
            experiment_id=self._experiment,
            plugin_name=SCALARS_PLUGIN,
            downsample=DOWNSAMPLE,
            run_tag_filter=provider.RunTagFilter(runs=[name], tags=tags),
        ).get(name, {})
        scalars = series_from_mapping(
            {tag: ([d.step for d in points], [d.value for d in points]) for tag, points in data.items()}
        )
        texts = self._texts(name)
        alerts = parse_alerts(texts.get(ALERTS_TEXT_TAG[: -len(TEXT_SUFFIX)], []))
        return RunData(name=name, scalars=scalars, alerts=alerts, texts=texts)

    def _texts(self, name: str) -> dict[str, list[tuple[int, str]]]:
        """``text tag (as the monitor wrote it) -> [(step, markdown), ...]`` of :data:`TEXT_TAGS`, in step order."""
        data = self._provider.read_tensors(
            self._ctx,
            experiment_id=self._experiment,
            plugin_name=TEXT_PLUGIN,
            downsample=DOWNSAMPLE,
            run_tag_filter=provider.RunTagFilter(runs=[name], tags=list(TEXT_TAGS)),
        ).get(name, {})
        texts: dict[str, list[tuple[int, str]]] = {}
        for summary_tag, points in data.items():
            entries = texts.setdefault(summary_tag[: -len(TEXT_SUFFIX)], [])
            for datum in sorted(points, key=lambda d: d.step):
                for item in datum.numpy.reshape(-1):
                    entries.append((datum.step, item.decode("utf-8") if isinstance(item, bytes) else str(item)))
        return texts

    def kernel_images(self, name: str) -> list[KernelImage]:
        """The NTK heatmap images of run ``name``, in step order."""
        sequences = (
            self._provider.read_blob_sequences(
                self._ctx,
                experiment_id=self._experiment,
                plugin_name=IMAGES_PLUGIN,
                downsample=DOWNSAMPLE,
                run_tag_filter=provider.RunTagFilter(runs=[name], tags=[KERNEL_HEATMAP]),
            )
            .get(name, {})
            .get(KERNEL_HEATMAP, [])
        )
        # An image summary's blobs are [width, height, png].
        return [KernelImage(d.step, d.values[2].blob_key) for d in sequences if len(d.values) > 2]

    def blob(self, blob_key: str) -> bytes:
        """The bytes of a blob (a heatmap's PNG)."""
        return self._provider.read_blob(self._ctx, blob_key=blob_key)
