"""The running statistics of BatchNorm layers, reported apart from the kernel: a change of buffers is not
feature learning."""

from __future__ import annotations

from regimescope.capture.layers import normalization_layers
from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.statistics_shift import statistics_shift
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import NORMALIZATION_EVAL_GAP, NORMALIZATION_RUNNING_CHANGE, layer_tag


class NormalizationStatistics(Indicator):
    """Per BatchNorm layer that tracks running statistics, how its statistics moved and how far they are from the
    probe's.

    The monitor measures a BatchNorm network with the probe's own batch statistics (``mode="batch_stats"``, as in
    training), so the kernel and the verdict never depend on the running statistics. They matter for the model in
    eval mode (what is deployed), and are reported here, with the shift ``D`` of
    :func:`~regimescope.functional.statistics_shift.statistics_shift` (mean over channels of the squared
    Hellinger distance between the two per-channel Gaussians, variances with the layer's ``eps``; 0 equal,
    towards 1 disjoint):

    * ``regimescope/normalization/running_change/<layer>``: ``D(running at step 0, running now)``: how far the
      running statistics moved since step 0 (they start at mean 0, variance 1, unrelated to the activations, so
      this rises in the first steps of every run, lazy or rich).
    * ``regimescope/normalization/eval_gap/<layer>``: ``D(running now, probe now)``: how different eval-mode
      normalisation is from the statistics the probe has at the layer's input in the measured function; a large
      gap means the eval-mode model is not the function being trained (stale or still-initial statistics).

    ``regimescope/normalization/running_change`` and ``regimescope/normalization/eval_gap`` are the means over
    layers. None of them enters the richness score.
    """

    name = "normalization_statistics"
    needs = frozenset({Need.NORMALIZATION})
    reference = Reference.INIT
    outputs = (Output(NORMALIZATION_RUNNING_CHANGE, per_layer=True), Output(NORMALIZATION_EVAL_GAP, per_layer=True))

    def applicable(self, context: Context) -> bool:
        return bool(normalization_layers(context.model))

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        initial = reference.normalization if reference is not None else current.normalization
        metrics: dict[str, list[float]] = {NORMALIZATION_RUNNING_CHANGE: [], NORMALIZATION_EVAL_GAP: []}
        for layer, stats in current.normalization.items():
            eps = stats["eps"]
            values = {NORMALIZATION_EVAL_GAP: statistics_shift(stats["running_mean"], stats["running_var"] + eps,
                                                   stats["batch_mean"], stats["batch_var"] + eps)}
            if layer in initial:
                first = initial[layer]
                values[NORMALIZATION_RUNNING_CHANGE] = statistics_shift(first["running_mean"], first["running_var"] + eps,
                                                            stats["running_mean"], stats["running_var"] + eps)
            for metric, value in values.items():
                record.scalars[layer_tag(metric, layer)] = float(value)
                metrics[metric].append(float(value))
        for metric, values in metrics.items():
            if values:
                record.scalars[metric] = sum(values) / len(values)
        return record
