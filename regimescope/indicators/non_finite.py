"""Non-finite values in a capture: the markers of a diverged model."""

from __future__ import annotations

import torch

from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import KERNEL_BLOCK_VALUE, OUTPUTS_VALUE, WEIGHTS_VALUE, layer_tag


def _first_bad(values: torch.Tensor) -> float:
    return float(values[~torch.isfinite(values)].reshape(-1)[0])


def non_finite_values(snapshot: Snapshot) -> dict[str, float]:
    """The non-finite parts of a capture: ``tag -> first non-finite value`` (empty when everything is finite).

    A diverged model has NaN or infinite weights, outputs or kernel blocks; the other indicators cannot be computed
    on them (a singular value decomposition of a NaN kernel fails). Tags: ``regimescope/weights/value/<parameter>``,
    ``regimescope/outputs/value`` and ``regimescope/kernel/block/<layer>``.
    """
    parts = {layer_tag(WEIGHTS_VALUE, name): w for name, w in snapshot.weights.items()}
    if snapshot.outputs is not None:
        parts[OUTPUTS_VALUE] = snapshot.outputs
    parts.update({layer_tag(KERNEL_BLOCK_VALUE, layer): k for layer, k in snapshot.layer_kernels.items()})
    return {name: _first_bad(values) for name, values in parts.items() if not bool(torch.isfinite(values).all())}


class NonFiniteValues(Indicator):
    """Screens each capture for NaN or infinite weights, outputs and kernel blocks.

    It reads whatever the capture holds (it asks for nothing extra). When something is not finite, its record holds
    the markers of :func:`non_finite_values`, the other indicators and the verdict are skipped for that measurement,
    and the :class:`~regimescope.alerts.NonFinite` rule reports it.
    """

    name = "non_finite"
    needs = frozenset()
    reference = Reference.NONE
    screens = True
    outputs = (
        Output(WEIGHTS_VALUE, per_layer=True),
        Output(OUTPUTS_VALUE),
        Output(KERNEL_BLOCK_VALUE, per_layer=True),
    )

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        return Record(current.step, scalars=non_finite_values(current))
