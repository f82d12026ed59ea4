"""Collection passes: forwards over sample chunks and batched output backward passes that fill each layer's data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from regimescope import batch
from regimescope.ntk.execution.backward import output_gradients
from regimescope.ntk.model.model_call import ModelCall
from regimescope.ntk.model.recorder import Expansion, Recorder
from regimescope.ntk.planning.profile import SEED, LayerShape
from regimescope.ntk.rules.base import LayerData, LayerRule


class LayoutChanged(RuntimeError):
    """A watched layer stopped receiving batch-first inputs at the collection's chunk size."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"layers {names} did not see the batch as leading dimension")
        self.names = names


@dataclass(frozen=True)
class Watched:
    """A layer the collection passes record.

    Attributes:
        module: The layer.
        rule: Its rule.
        locals_: Parameter attribute names whose per-sample gradients are used.
        per_sample: Keep per-sample gradients of ``locals_`` instead of the factors.
    """

    module: nn.Module
    rule: LayerRule
    locals_: tuple[str, ...]
    per_sample: bool = False


def _allocate(watched: dict[str, Watched], layers: dict[str, LayerShape], n: int, k: int, like: torch.Tensor,
              records: dict[str, torch.Tensor]) -> dict[str, LayerData]:
    """Buffers for all ``n`` examples and ``k`` outputs (used when the passes are chunked)."""
    data = {}
    for name, w in watched.items():
        shape = layers[name]
        if w.per_sample:
            sizes = {local: w.module._parameters[local].numel() for local in w.locals_}
            data[name] = LayerData(per_sample={local: like.new_empty(k, n, p) for local, p in sizes.items()})
            continue
        record = records[name]
        if w.rule.channels_first:
            grads = like.new_empty(k, n, shape.grad_width, shape.tokens).transpose(-1, -2)
        else:
            grads = like.new_empty(k, n, shape.tokens, shape.grad_width)
        data[name] = LayerData(record=record.new_empty(n, *record.shape[1:]), grads=grads)
    return data


def _store(data: dict[str, LayerData], name: str, w: Watched, record: torch.Tensor, tokens: torch.Tensor,
           rows: slice, cols: slice, whole: bool) -> None:
    """Keep one chunk's gradients ``tokens`` ``(q, s, T, C)``: as they are when one chunk is everything, else copied
    into the buffers (per-sample layers: reduced to per-sample gradients first)."""
    if w.per_sample:
        for local in w.locals_:
            value = w.rule.per_sample(w.module, local, record, tokens)
            if whole:
                data[name].per_sample[local] = value
            else:
                data[name].per_sample[local][cols, rows] = value
    elif whole:
        data[name].grads = tokens
    else:
        data[name].grads[cols, rows] = tokens


def collect(
    call: ModelCall,
    watched: dict[str, Watched],
    leaf_names: list[str],
    inputs: batch.Inputs,
    layers: dict[str, LayerShape],
    k: int,
    sample_chunk: int,
    output_chunk: int,
    expansions: Mapping[str, Expansion],
) -> dict[str, LayerData]:
    """Fill the data of the watched layers on all examples of ``inputs``.

    For each chunk of ``sample_chunk`` examples: one forward pass with the recording hooks, then one batched
    backward pass per ``output_chunk`` outputs (:func:`~regimescope.ntk.execution.backward.output_gradients`). Memory:
    the chunk's graph, ``output_chunk`` times its gradients, and the returned data.

    Args:
        call: The functional model.
        watched: The layers to record.
        leaf_names: Parameters to differentiate (so that the watched layers' outputs are in the graph).
        inputs: Prepared inputs.
        layers: The watched layers' sizes from the probe pass.
        k: Outputs per example.
        sample_chunk: Examples per forward pass.
        output_chunk: Outputs per backward pass.
        expansions: The layers shared by the batch, expanded to each chunk's examples as the probe pass found
            (:class:`~regimescope.ntk.model.recorder.Recorder`).

    Returns:
        ``name -> LayerData`` over all ``n`` examples and ``k`` outputs.

    Raises:
        LayoutChanged: When a layer's leading dimension is not the chunk's batch size.
    """
    n = batch.batch_size(inputs)
    whole = sample_chunk >= n and output_chunk >= k
    names = list(watched)
    recording = {name: (w.module, w.rule) for name, w in watched.items()}
    data: dict[str, LayerData] = {name: LayerData() for name in names}
    for start in range(0, n, sample_chunk):
        rows = slice(start, min(start + sample_chunk, n))
        leaves = {name: call.params[name].detach().requires_grad_() for name in leaf_names}
        torch.manual_seed(SEED)
        with Recorder(recording, rows.stop - rows.start, expansions) as recorder:
            outputs = call(leaves, batch.select(inputs, rows))
        broken = [name for name in names if not recorder.batch_first(name, rows.stop - rows.start)]
        if broken:
            raise LayoutChanged(broken)
        records = {name: recorder.records(name) for name in names}
        if whole:
            for name in names:
                data[name].record = None if watched[name].per_sample else records[name]
        else:
            if start == 0:
                data = _allocate(watched, layers, n, k, outputs, records)
            for name in names:
                if data[name].record is not None:
                    data[name].record[rows] = records[name]
        zs = recorder.outputs(names)
        for o0 in range(0, k, output_chunk):
            cols = slice(o0, min(o0 + output_chunk, k))
            grads = output_gradients(outputs, zs, range(cols.start, cols.stop))
            position = 0
            for name in names:
                w = watched[name]
                count = len(recorder.calls[name])
                parts = [w.rule.grad_tokens(w.module, g) for g in grads[position : position + count]]
                position += count
                tokens = parts[0] if count == 1 else torch.cat(parts, dim=2)
                _store(data, name, w, records[name], tokens, rows, cols, whole)
            del grads
        del outputs, zs, recorder, records
    return data
