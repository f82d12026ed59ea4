"""Per-layer view of the NTK: how far each layer's block moved, and its share of the kernel."""

from __future__ import annotations

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_distance
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record, tag


class LayerKernels(Indicator):
    """For each layer ``l``: ``S(K_{l,0}, K_{l,t})`` and its share ``tr K_{l,t} / tr K_t``.

    The share says how much of the function's movement the layer carries; a layer can change a lot (high
    distance) and still leave the whole kernel lazy if its share is tiny (theory.md section 5.5).

    A layer absent from the step-0 kernel (e.g. unfrozen later) reports its share but no distance.

    Tags: ``regimescope/kernel/distance_from_init/<layer>``, ``regimescope/kernel/share/<layer>``.
    """

    name = "layer_kernels"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        total = float(sum(torch.trace(k.double()) for k in current.layer_kernels.values()))
        for layer, k_t in current.layer_kernels.items():
            if layer in reference.layer_kernels:
                distance = kernel_distance(reference.layer_kernels[layer], k_t)
                record.scalars[tag("kernel", "distance_from_init", layer)] = float(distance)
            share = float(torch.trace(k_t.double())) / total if total > 0 else 0.0
            record.scalars[tag("kernel", "share", layer)] = share
        return record
