"""Relative weight change per layer since initialisation."""

from __future__ import annotations

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import relative_change
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.record import Record, tag


class WeightChange(Indicator):
    """``|W_t - W_0|_F / |W_0|_F`` per layer (all trainable parameters of the module together).

    Not a regime indicator on its own: upstream rich learning moves parameters little, while small-init
    networks move them a lot relative to their size (theory.md section 5.8). Reported as context.

    A layer that starts at zero reports ``inf`` once it moves (the relative change is undefined there).

    Tag: ``regimescope/weights/relative_change/<layer>``.
    """

    name = "weight_change"
    needs = frozenset({Need.WEIGHTS})
    reference = Reference.INIT

    def setup(self, context: Context) -> None:
        context.extras[self.name] = {b.name: b.param_names for b in parameter_blocks(context.model)}

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        for layer, names in context.extras[self.name].items():
            now = torch.cat([current.weights[n].double().reshape(-1) for n in names])
            start = torch.cat([reference.weights[n].double().reshape(-1) for n in names])
            record.scalars[tag("weights", "relative_change", layer)] = float(relative_change(now, start))
        return record
