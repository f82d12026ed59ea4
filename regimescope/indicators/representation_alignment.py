"""How aligned each watched layer's representation is with the targets."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.alignment import target_matrix
from regimescope.functional.cka import linear_cka
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import REPRESENTATION_TARGET_ALIGNMENT, layer_tag


class RepresentationAlignment(Indicator):
    """Linear CKA between a layer's probe features and the targets ``Y`` (one-hot for class labels).

    Rises as hidden layers learn task-relevant features (rich learning); stays at its initial value in lazy
    training. Needs probe targets.

    Tag: ``regimescope/representation/target_alignment/<layer>``.
    """

    name = "representation_alignment"
    needs = frozenset({Need.FEATURES})
    reference = Reference.NONE
    outputs = (Output(REPRESENTATION_TARGET_ALIGNMENT, Direction.HIGHER, per_layer=True),)

    def applicable(self, context: Context) -> bool:
        return context.probe.targets is not None

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        targets = target_matrix(context.probe.targets.cpu())
        record = Record(current.step)
        for layer, features in current.features.items():
            record.scalars[layer_tag(REPRESENTATION_TARGET_ALIGNMENT, layer)] = float(linear_cka(features, targets))
        return record
