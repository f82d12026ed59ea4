"""How much each watched layer's representation changed since initialisation."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.cka import linear_cka
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import REPRESENTATION_CKA, layer_tag


class RepresentationDrift(Indicator):
    """Linear CKA between a layer's probe features now and at step 0.

    1 while the representation is the initial one up to rotation and scale; falls as the layer learns new
    features. Never a verdict alone: with unbalanced layers a layer that carries almost none of the NTK can
    change (CKA ~0.5) while the network stays lazy (theory.md section 5.5); read it with the layer's kernel
    share.

    Tag: ``regimescope/representation/cka_to_init/<layer>``.
    """

    name = "representation_drift"
    needs = frozenset({Need.FEATURES})
    reference = Reference.INIT
    outputs = (Output(REPRESENTATION_CKA, Direction.LOWER, per_layer=True),)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        for layer, features in current.features.items():
            if layer in reference.features:
                value = linear_cka(features, reference.features[layer])
                record.scalars[layer_tag(REPRESENTATION_CKA, layer)] = float(value)
        return record
