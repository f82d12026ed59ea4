"""How aligned each watched layer's representation is with the targets."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.alignment import target_matrix
from regimescope.functional.cka import linear_cka
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record, tag


class RepresentationAlignment(Indicator):
    """Linear CKA between a layer's probe features and the targets ``Y`` (one-hot for class labels).

    Rises as hidden layers learn task-relevant features (rich learning); stays at its initial value in lazy
    training. Needs probe targets.

    Tag: ``regimescope/representation/target_alignment/<layer>``.
    """

    name = "representation_alignment"
    needs = frozenset({Need.FEATURES})
    reference = Reference.NONE

    def applicable(self, context: Context) -> bool:
        return context.probe.targets is not None

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        targets = target_matrix(context.probe.targets.cpu())
        record = Record(current.step)
        for layer, features in current.features.items():
            record.scalars[tag("representation", "target_alignment", layer)] = float(linear_cka(features, targets))
        return record
