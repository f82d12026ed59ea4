"""Per-layer view of the NTK: how far each layer's block moved, and its share of the kernel."""

from __future__ import annotations

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_distance
from regimescope.indicators.base import Context, Direction, Output, Reference
from regimescope.indicators.noise import NoisyIndicator, distance
from regimescope.record import Record
from regimescope.tags import KERNEL_DISTANCE, KERNEL_SHARE, layer_tag


class LayerKernels(NoisyIndicator):
    """For each layer ``l``: ``S(K_{l,0}, K_{l,t})`` (with its probe-half noise) and its share ``tr K_{l,t} / tr K_t``.

    The share says how much of the function's movement the layer carries; a layer can change a lot (high
    distance) and still leave the whole kernel lazy if its share is tiny (theory.md section 5.5).
    A layer absent from the step-0 kernel (e.g. unfrozen later) reports its share but no distance.

    Tags: ``regimescope/kernel/distance_from_init/<layer>``, ``regimescope/kernel/share/<layer>``.
    """

    name = "layer_kernels"
    needs = frozenset({Need.KERNEL})
    reference = Reference.INIT
    outputs = (
        Output(KERNEL_DISTANCE, Direction.HIGHER, per_layer=True, noisy=True),
        Output(KERNEL_SHARE, per_layer=True),
    )

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        total = float(sum(torch.trace(k.double()) for k in current.layer_kernels.values()))
        for layer, k_t in current.layer_kernels.items():
            if layer in reference.layer_kernels:
                k_0 = reference.layer_kernels[layer]
                tag = layer_tag(KERNEL_DISTANCE, layer)
                record.scalars[tag] = float(kernel_distance(k_0, k_t))
                halves = (reference.layer_kernel_halves.get(layer), current.layer_kernel_halves.get(layer))
                self.add_noise(record, tag, distance, k_0, k_t, halves=halves)
            share = float(torch.trace(k_t.double())) / total if total > 0 else 0.0
            record.scalars[layer_tag(KERNEL_SHARE, layer)] = share
        return record
