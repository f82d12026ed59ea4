"""Weight change per layer since initialisation."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.weight_change import pooled_change
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.record import Record
from regimescope.tags import WEIGHTS_CHANGE, WEIGHTS_RELATIVE_CHANGE, layer_tag


class WeightChange(Indicator):
    """``|W_t - W_0|_F / |W_0|_F`` per layer (all trainable parameters of the module together).

    Not a regime indicator on its own: upstream rich learning moves parameters little, while small-init
    networks move them a lot relative to their size (theory.md section 5.8). Reported as context.

    A layer that starts at zero (a zero-initialised head, a LoRA-style zero factor) has no relative change: it
    reports the absolute change ``|W_t - W_0|_F = |W_t|_F`` under ``regimescope/weights/change/<layer>`` instead
    (an undefined ratio is not divergence).

    Tags: ``regimescope/weights/relative_change/<layer>``, ``regimescope/weights/change/<layer>``.
    """

    name = "weight_change"
    needs = frozenset({Need.WEIGHTS})
    reference = Reference.INIT
    outputs = (Output(WEIGHTS_RELATIVE_CHANGE, per_layer=True), Output(WEIGHTS_CHANGE, per_layer=True))

    def __init__(self) -> None:
        self._layers: dict[str, tuple[str, ...]] = {}

    def setup(self, context: Context) -> None:
        self._layers = {b.name: tuple(b.param_names) for b in parameter_blocks(context.model)}

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        squares = current.squared_change(reference)
        for layer, names in self._layers.items():
            pooled = pooled_change(squares, names)
            if pooled is None:
                continue
            moved, size = pooled
            if size > 0:
                record.scalars[layer_tag(WEIGHTS_RELATIVE_CHANGE, layer)] = moved / size
            else:
                record.scalars[layer_tag(WEIGHTS_CHANGE, layer)] = moved
        return record
