"""Fraction of ReLU on/off states that flipped since initialisation."""

from __future__ import annotations

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import PATTERN_CHANGE, layer_tag


class ActivationPatternChange(Indicator):
    """Fraction of (probe input, unit) pairs whose on/off state differs from step 0: ``mean(1[z_t > 0] != 1[z_0 > 0])``.

    Upstream rich learning moves the kernel through activation patterns, which flip fast while parameters barely
    move (large Hamming distance, small parameter distance); wide lazy networks flip a fraction ~ m^{-1/2}.
    Tracks ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.ReLU6`` modules.

    Tag: ``regimescope/activations/pattern_change/<layer>``.
    """

    name = "activation_pattern_change"
    needs = frozenset({Need.ACTIVATION_PATTERNS})
    reference = Reference.INIT
    outputs = (Output(PATTERN_CHANGE, Direction.HIGHER, per_layer=True),)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        for layer, pattern in current.activation_patterns.items():
            start = reference.activation_patterns.get(layer)
            if start is not None and start.shape == pattern.shape:
                value = (pattern != start).double().mean()
                record.scalars[layer_tag(PATTERN_CHANGE, layer)] = float(value)
        return record
