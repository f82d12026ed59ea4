"""How aligned each watched layer's representation is with the targets."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.alignment import gram_alignment, target_gram
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import REPRESENTATION_TARGET_ALIGNMENT, layer_tag


class RepresentationAlignment(Indicator):
    """Linear CKA between a layer's probe features ``Phi`` and the targets ``Y`` (one-hot for labels and tokens).

    Computed from the Gram matrices, ``<H Phi Phi^T H, H Y Y^T H>_F / (|H Phi Phi^T H|_F |H Y Y^T H|_F)`` with
    ``Y Y^T`` from :func:`~regimescope.functional.alignment.target_gram` in the probe's target layout (so a
    language model's one-hot next tokens are never formed). Rises as hidden layers learn task-relevant features
    (rich learning); stays at its initial value in lazy training. Needs probe targets.

    Tag: ``regimescope/representation/target_alignment/<layer>``.
    """

    name = "representation_alignment"
    needs = frozenset({Need.FEATURES})
    reference = Reference.NONE
    outputs = (Output(REPRESENTATION_TARGET_ALIGNMENT, Direction.HIGHER, per_layer=True),)

    def applicable(self, context: Context) -> bool:
        return context.probe.targets is not None

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        targets = target_gram(context.probe.targets.cpu(), context.probe.target_layout)
        record = Record(current.step)
        for layer, features in current.features.items():
            phi = features.reshape(features.shape[0], -1).double()
            value = gram_alignment(phi @ phi.T, targets)
            record.scalars[layer_tag(REPRESENTATION_TARGET_ALIGNMENT, layer)] = float(value)
        return record
