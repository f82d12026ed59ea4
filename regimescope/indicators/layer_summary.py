"""Per-block summaries of the per-layer kernel and weight families, so that deep models stay readable."""

from __future__ import annotations

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.functional.kernel_distance import kernel_distance
from regimescope.functional.weight_change import pooled_change
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.record import Record
from regimescope.tags import BLOCK_KERNEL_DISTANCE, BLOCK_KERNEL_SHARE, BLOCK_WEIGHTS_RELATIVE_CHANGE, layer_tag

SUMMARISED_ABOVE = 12
"""A model with more parameter layers than this gets block summaries (a chart of more lines is hard to read)."""
MAX_BLOCKS = 16
"""The most blocks a summary has: the finest grouping of the module names with at most this many groups is used."""


def group_layers(layers: list[str], max_blocks: int = MAX_BLOCKS) -> dict[str, list[str]]:
    """Group layer names into blocks by the leading parts of their module names.

    The blocks are the name prefixes of the finest depth that leaves at most ``max_blocks`` groups and fewer
    groups than layers: a ResNet-18's ``layer2.0.conv1`` and ``layer2.0.downsample.0`` fall in ``layer2.0`` (11
    blocks: ``conv1``, ``bn1``, ``layer1.0`` ... ``layer4.1``, ``fc``), a GPT's ``transformer.h.3.attn.c_attn`` in
    ``transformer.h.3``.

    Args:
        layers: Layer (module) names in model order.
        max_blocks: The most groups allowed.

    Returns:
        ``block -> its layers`` in model order; empty when no depth groups the layers (e.g. ``"0"``, ``"2"``, ``"4"``
        of a ``Sequential``).
    """
    deepest = max((len(layer.split(".")) for layer in layers), default=0)
    for depth in range(deepest - 1, 0, -1):
        groups: dict[str, list[str]] = {}
        for layer in layers:
            groups.setdefault(".".join(layer.split(".")[:depth]), []).append(layer)
        if len(groups) <= max_blocks and len(groups) < len(layers):
            return groups
    return {}


class LayerSummary(Indicator):
    """Per block ``b`` of layers (see :func:`group_layers`): kernel distance, kernel share and weight change.

    With ``K_b = sum_{l in b} K_l`` the block's part of the NTK (the kernel is additive over layers):

    - ``regimescope/blocks/kernel_distance_from_init/<block>``: ``S(K_{b,0}, K_{b,t})``, how far the block's kernel
      turned (0 lazy, towards 1 rich), over the block's layers present at step 0;
    - ``regimescope/blocks/kernel_share/<block>``: ``tr K_{b,t} / tr K_t``, how much of the function's movement the
      block carries (a block that turns but carries little barely moves the function, theory.md section 5.5);
    - ``regimescope/blocks/weights_relative_change/<block>``: ``|W_{b,t} - W_{b,0}|_F / |W_{b,0}|_F`` over all of the
      block's trainable parameters (context, not a regime indicator: theory.md section 5.8); a block that starts
      at zero has no relative change and no such tag (its layers' ``regimescope/weights/change`` hold the change).

    Only models with more than :data:`SUMMARISED_ABOVE` parameter layers get summaries; the per-layer tags are
    written as before, the summaries are what the custom-scalars layout shows for such models.
    """

    name = "layer_summary"
    needs = frozenset({Need.KERNEL, Need.WEIGHTS})
    reference = Reference.INIT
    outputs = (
        Output(BLOCK_KERNEL_DISTANCE, Direction.HIGHER, per_layer=True),
        Output(BLOCK_KERNEL_SHARE, per_layer=True),
        Output(BLOCK_WEIGHTS_RELATIVE_CHANGE, per_layer=True),
    )

    def __init__(self) -> None:
        self._blocks: dict[str, tuple[list[str], tuple[str, ...]]] = {}

    def setup(self, context: Context) -> None:
        blocks = parameter_blocks(context.model)
        params = {block.name: block.param_names for block in blocks}
        groups = group_layers(list(params)) if len(params) > SUMMARISED_ABOVE else {}
        self._blocks = {
            block: (layers, tuple(name for layer in layers for name in params[layer]))
            for block, layers in groups.items()
        }

    def applicable(self, context: Context) -> bool:
        return bool(self._blocks)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        record = Record(current.step)
        kernels, start = current.layer_kernels, reference.layer_kernels
        total = float(sum(torch.trace(k.double()) for k in kernels.values()))
        squares = current.squared_change(reference)
        for block, (layers, names) in self._blocks.items():
            present = [layer for layer in layers if layer in kernels]
            if present:
                share = sum(float(torch.trace(kernels[layer].double())) for layer in present)
                record.scalars[layer_tag(BLOCK_KERNEL_SHARE, block)] = share / total if total > 0 else 0.0
            compared = [layer for layer in present if layer in start]
            if compared:
                k_0 = torch.stack([start[layer].double() for layer in compared]).sum(0)
                k_t = torch.stack([kernels[layer].double() for layer in compared]).sum(0)
                record.scalars[layer_tag(BLOCK_KERNEL_DISTANCE, block)] = float(kernel_distance(k_0, k_t))
            pooled = pooled_change(squares, names)
            if pooled is not None and pooled[1] > 0:
                record.scalars[layer_tag(BLOCK_WEIGHTS_RELATIVE_CHANGE, block)] = pooled[0] / pooled[1]
        return record
