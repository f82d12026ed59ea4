"""Generic exact Jacobian rows of parameter blocks through ``torch.func``, and kernels of row chunks."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch.func import jacrev, vmap

from regimescope import batch
from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.model.model_call import ModelCall
from regimescope.ntk.planning.profile import SEED

logger = logging.getLogger(__name__)

BlockRows = dict[str, list[torch.Tensor]]
"""``block name -> [(outputs, examples, P_p) for each parameter p of the block]`` Jacobian rows (kept apart: the
kernel is a sum over parameters, so they are never concatenated)."""


def _by_block(jac: dict[str, torch.Tensor], blocks: list[ParamBlock], lead: tuple[int, int]) -> BlockRows:
    """``(examples, outputs, *shape)`` Jacobians as output-major ``(outputs, examples, P)`` views."""
    return {b.name: [jac[name].reshape(*lead, -1).transpose(0, 1) for name in b.param_names] for b in blocks}


class PerSampleRows:
    """``vmap`` over examples of ``jacrev`` of the single-example function, for a group of blocks at once.

    Valid when examples are processed independently (eval mode). One call for ``c`` examples and ``q`` outputs
    costs ``c q`` vmapped backward passes of one example and holds ``c q (P_group + activations)``. Some models
    cannot run under ``vmap``: a forward that branches on its inputs' values (Hugging Face models check their
    attention masks with ``mask.all()``), or operations whose batching rule fails (the fused kernels of
    ``nn.GRU``, ``nn.RNN`` and float64 ``nn.LSTM`` write into unbatched buffers). The rows are then computed example
    by example, each with ``jacrev`` alone (its ``vmap`` is over output cotangents in the backward pass, which such
    code does not reach): the same rows, without the batching over examples. When that fails too, the model itself
    fails, and the error raised is the one under ``vmap``, with the example-by-example error as its cause.

    Args:
        call: The functional model.
        blocks: The group's blocks.
        inputs: Prepared inputs of one set.
    """

    def __init__(self, call: ModelCall, blocks: list[ParamBlock], inputs: batch.Inputs) -> None:
        self.call, self.blocks, self.inputs = call, blocks, inputs
        self.example_by_example = False

    def __call__(self, rows: slice, outputs: slice) -> BlockRows:
        """Rows ``(|outputs|, |rows|, P_p)`` per parameter of each block."""
        own = {name: self.call.params[name] for b in self.blocks for name in b.param_names}

        def single(params: dict[str, torch.Tensor], example: batch.Inputs) -> torch.Tensor:
            one = batch.map_tensors(example, lambda t: t.unsqueeze(0))
            return self.call(params, one)[0, outputs]

        chunk = batch.select(self.inputs, rows)
        if self.example_by_example:
            jac = self._one_by_one(single, own, chunk, rows.stop - rows.start)
        else:
            torch.manual_seed(SEED)
            try:
                jac = vmap(jacrev(single), in_dims=(None, 0))(own, chunk)
            except Exception as error:  # noqa: BLE001 - any failure under vmap gets the unbatched try
                jac = self._fallback(error, single, own, chunk, rows.stop - rows.start)
        return _by_block(jac, self.blocks, (rows.stop - rows.start, outputs.stop - outputs.start))

    def _fallback(self, error: Exception, single: Callable[..., torch.Tensor], own: dict[str, torch.Tensor],
                  chunk: batch.Inputs, count: int) -> dict[str, torch.Tensor]:
        """The rows example by example after ``error`` under ``vmap``; ``error`` itself if they fail too."""
        try:
            jac = self._one_by_one(single, own, chunk, count)
        except Exception as second:
            if hasattr(error, "add_note"):  # Python 3.11+; before, the chained cause alone tells it
                error.add_note(
                    "regimescope: the NTK's Jacobian rows failed under torch.func.vmap (above) and again example by "
                    f"example ({type(second).__name__}: {second}), so the model itself fails on this input."
                )
            raise error from second
        logger.info("The model cannot run under vmap (%s); Jacobian rows example by example.",
                    str(error).split(".")[0])
        self.example_by_example = True
        return jac

    def _one_by_one(self, single: Callable[..., torch.Tensor], own: dict[str, torch.Tensor], chunk: batch.Inputs,
                    count: int) -> dict[str, torch.Tensor]:
        """``jacrev`` of each example alone, stacked."""
        per_example = []
        for i in range(count):
            torch.manual_seed(SEED)
            example = batch.map_tensors(batch.select(chunk, slice(i, i + 1)), lambda t: t.squeeze(0))
            per_example.append(jacrev(single)(own, example))
        return {name: torch.stack([j[name] for j in per_example]) for name in own}


class FullBatchRows:
    """``jacrev`` of the whole-batch function, restricted to some examples' outputs.

    Exact when examples interact (BatchNorm with batch statistics in train mode). Every call runs the whole
    batch forward (on fresh buffer copies, so statistics updates never carry over); memory
    ``n * activations * c q`` for ``c`` examples and ``q`` outputs.

    Args:
        call: The functional model.
        blocks: The group's blocks.
        inputs: Prepared inputs of one set (the whole batch).
    """

    def __init__(self, call: ModelCall, blocks: list[ParamBlock], inputs: batch.Inputs) -> None:
        self.call, self.blocks, self.inputs = call, blocks, inputs

    def __call__(self, rows: slice, outputs: slice) -> BlockRows:
        """Rows ``(|outputs|, |rows|, P_p)`` per parameter of each block."""
        own = {name: self.call.params[name] for b in self.blocks for name in b.param_names}

        def chosen(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.call(params, self.inputs, buffers)[rows, outputs]

        torch.manual_seed(SEED)
        jac = jacrev(chosen)(own, self.call.fresh_buffers())
        first = jac[self.blocks[0].param_names[0]]
        return _by_block(jac, self.blocks, (first.shape[0], first.shape[1]))


def rows_kernel(ja: BlockRows, jb: BlockRows, full: bool) -> dict[str, torch.Tensor]:
    """Kernel pieces from Jacobian rows ``(qa, ca, P_p)`` and ``(qb, cb, P_p)`` of each parameter of each block.

    Trace (``qa = qb``): ``K[i, j] = sum_p sum_o <J_a[o,i,p], J_b[o,j,p]>``, one batched product over outputs;
    full: ``K[i, j, o, q] = sum_p <J_a[o,i,p], J_b[q,j,p]>``, one product over ``P_p``.
    """
    pieces = {}
    for name, parts_a in ja.items():
        total = None
        for a, b in zip(parts_a, jb[name]):
            if full:
                flat = a.reshape(-1, a.shape[2]) @ b.reshape(-1, b.shape[2]).T
                piece = flat.view(a.shape[0], a.shape[1], b.shape[0], b.shape[1]).permute(1, 3, 0, 2)
            else:
                piece = torch.bmm(a, b.transpose(1, 2)).sum(0)
            total = piece if total is None else total + piece
        pieces[name] = total
    return pieces
